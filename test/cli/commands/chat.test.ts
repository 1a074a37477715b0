import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cli, startHarness } from '../../daemon/harness.js';

test('cs-llm chat talks through the daemon with memory, and /history, /reset and /exit work', async (t) => {
  const h = await startHarness(t);
  const input = ['my name is Ada', 'what is my name?', '/history', '/reset', 'what is my name?', '/exit', 'never sent'].join('\n');
  const result = await cli(['chat', '--url', h.daemon.url, '--session', 'cli-chat'], { env: { CS_LLM_HOME: h.home }, input });
  assert.equal(result.exitCode, 0, result.stderr);
  const lines = result.stdout.split('\n');
  assert.match(lines[0]!, /^Turn 1/);
  assert.equal(lines[1], 'Your name is Ada.');
  assert.equal(lines[2], 'user: my name is Ada');
  assert.match(lines[3]!, /^assistant: Turn 1/);
  assert.equal(lines[4], 'user: what is my name?');
  assert.equal(lines[5], 'assistant: Your name is Ada.');
  assert.equal(lines[6], '(session cleared)');
  assert.match(lines[7]!, /I do not know your name yet/);
  assert.equal(result.stdout.includes('never sent'), false);
  assert.match(result.stderr, /session cli-chat with cs-llm-sim/);
});

test('cs-llm chat against no daemon says so and how to start one', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-cli-'));
  const result = await cli(['chat', '--url', 'http://127.0.0.1:9'], { env: { CS_LLM_HOME: dir }, input: 'hi\n' });
  assert.equal(result.exitCode, 4);
  assert.match(result.stderr, /did not answer/);
  assert.match(result.stderr, /next: Start it with cs-llm daemon start/);
});
