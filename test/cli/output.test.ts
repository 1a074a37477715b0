import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createOutput } from '../../src/cli/output.js';

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
