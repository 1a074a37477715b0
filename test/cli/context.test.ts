import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { intFlag } from '../../src/cli/context.js';
import { cli } from '../daemon/harness.js';

test('one integer flag parser: whole decimal numbers in the flag’s range, anything else refused naming the flag and the range', () => {
  const port = intFlag('--port', { min: 0, max: 65535 });
  assert.equal(port('8080'), 8080);
  assert.equal(port('0'), 0);
  for (const bad of ['', ' ', '8.5', '1e3', '0x10', '-1', '65536', 'abc'])
    assert.throws(() => port(bad), new RegExp(`--port must be a whole number from 0 to 65535, got "${bad.replace(/[.]/g, '\\.')}"`));
  assert.throws(() => intFlag('--tail', { min: 0 })('-3'), /--tail must be a whole number \(0 or more\), got "-3"/);
  assert.equal(intFlag('--offset')('-3'), -3);
});

test('every command refuses a bad whole-number flag the same way, as a usage error (exit 2) naming the flag', async () => {
  const env = { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-flags-')) };
  const cases: Array<[string[], RegExp]> = [
    [['logs', '--tail', '-1'], /--tail must be a whole number \(0 or more\), got "-1"/],
    [['daemon', 'run', '--port', '70000'], /--port must be a whole number from 0 to 65535, got "70000"/],
    [['sessions', 'list', '--limit', '2.5'], /--limit must be a whole number \(0 or more\), got "2\.5"/],
    [['dashboard', '--count', '0'], /--count must be a whole number \(1 or more\), got "0"/],
    [['up', '--threads', '0'], /--threads must be a whole number \(1 or more\), got "0"/],
  ];
  for (const [args, message] of cases) {
    const result = await cli(args, { env });
    assert.equal(result.exitCode, 2, `${args.join(' ')}: ${result.stderr}`);
    assert.match(result.stderr, message, args.join(' '));
  }
});
