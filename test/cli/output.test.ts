import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOutput, formatTable, paint } from '../../src/cli/output.js';
import { resolvePaths } from '../../src/core/paths.js';
import { cli, startHarness } from '../daemon/harness.js';
import { CONTROL, HOSTILE, HOSTILE_MODEL, startHostileEngine } from '../helpers/hostile-engine.js';

const tty = { isTTY: true, columns: 80, write: () => true } as unknown as NodeJS.WriteStream;
const pipe = { isTTY: false, write: () => true } as unknown as NodeJS.WriteStream;

test('a terminal on both ends is interactive, and colored unless NO_COLOR is set', () => {
  const output = createOutput(tty, tty, {}, { isTTY: true });
  assert.equal(output.interactive, true);
  assert.equal(output.color, true);
  assert.equal(createOutput(tty, tty, { NO_COLOR: '1' }, { isTTY: true }).color, false);
});

test('CI=true, piped stdin or piped stdout are not interactive (live views fall back to plain lines)', () => {
  assert.equal(createOutput(tty, tty, { CI: 'true' }, { isTTY: true }).interactive, false);
  assert.equal(createOutput(tty, tty, { CI: 'false' }, { isTTY: true }).interactive, true);
  assert.equal(createOutput(tty, tty, {}, { isTTY: false }).interactive, false);
  const piped = createOutput(pipe, pipe, {}, { isTTY: true });
  assert.equal(piped.interactive, false);
  assert.equal(piped.color, false);
});

test('out, err and write drop control characters but keep newlines, tabs and their own colours; json stays exact', () => {
  const written: string[] = [];
  const capture = { isTTY: true, columns: 80, write: (s: string) => written.push(s) } as unknown as NodeJS.WriteStream;
  const output = createOutput(capture, capture, {}, { isTTY: true });
  output.out(`${paint(output, 'green', 'ok')} a\tb\n${HOSTILE.title}c${HOSTILE.c1}d${HOSTILE.cr}`);
  assert.equal(written[0], '\u001b[32mok\u001b[0m a\tb\n]0;pwnedc31mdok\n', "the carriage return became the line's end");
  output.write(`x${HOSTILE.clear}y`);
  assert.equal(written[1], 'x[2J[Hy');
  output.json({ model: HOSTILE_MODEL });
  assert.deepEqual(JSON.parse(written[2]!), { model: HOSTILE_MODEL });

  const plain = createOutput(pipe, pipe, {}, { isTTY: false });
  const lines: string[] = [];
  const piped = { isTTY: false, write: (s: string) => lines.push(s) } as unknown as NodeJS.WriteStream;
  createOutput(piped, piped, {}, { isTTY: false }).out(paint(plain, 'green', 'ok') + '\u001b[32mforged');
  assert.equal(lines[0], 'ok[32mforged\n', 'without colour no escape sequence passes, not even a colour');
  assert.equal(formatTable(['name'], [[`a\nb${HOSTILE.title}`]]), 'name\na b]0;pwned');
});

test('a customer message with escape sequences is shown without them by sessions show, and exactly by --json', async (t) => {
  const h = await startHarness(t);
  const message = `where is my order ${HOSTILE.title}${HOSTILE.clear}12345${HOSTILE.c1}?`;
  await h.client({ sessionId: 'hostile' }).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: message }] });
  const env = { CS_LLM_HOME: h.home };
  const shown = await cli(['sessions', 'show', 'hostile'], { env });
  assert.equal(shown.exitCode, 0, shown.stderr);
  assert.doesNotMatch(shown.stdout, CONTROL);
  assert.match(shown.stdout, /user: where is my order \]0;pwned\[2J\[H12345 ?31m\?/);
  const json = await cli(['sessions', 'show', 'hostile', '--json'], { env });
  const session = JSON.parse(json.stdout) as { messages: Array<{ role: string; content: string }> };
  assert.equal(session.messages[0]!.content, message);
});

test("chat shows the engine's model id, its streamed reply and its error text without control characters", async (t) => {
  const url = await startHostileEngine(t);
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-output-'));
  const result = await cli(['chat', '--url', url, '--session', 's1'], { env: { CS_LLM_HOME: home }, input: 'hello\nfail\n/exit\n' });
  assert.doesNotMatch(result.stdout, CONTROL, JSON.stringify(result.stdout));
  assert.doesNotMatch(result.stderr, CONTROL, JSON.stringify(result.stderr));
  assert.match(result.stdout, /Hello\[2J\[H there\]0;pwnedok\n friend/);
  assert.match(result.stderr, /with \]0;pwnedevil-model31m at/);
  assert.match(result.stderr, /error: .*engine broke/);
});

test("logs prints the engine's log without control characters", async () => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-output-'));
  const paths = resolvePaths({ CS_LLM_HOME: home });
  mkdirSync(paths.stateDir, { recursive: true });
  writeFileSync(join(paths.stateDir, 'engine-process.log'), `INFO loading ${HOSTILE_MODEL}\nINFO ready ${HOSTILE.clear}\n`);
  const result = await cli(['logs'], { env: { CS_LLM_HOME: home, DOCKER_HOST: 'unix:///nonexistent/cs-llm-test-docker.sock' } });
  assert.equal(result.exitCode, 0, result.stderr);
  assert.doesNotMatch(result.stdout, CONTROL);
  assert.equal(result.stdout, 'INFO loading ]0;pwnedevil-model31m\nINFO ready [2J[H');
});
