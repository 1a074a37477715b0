import { test } from 'node:test';
import assert from 'node:assert/strict';
import { terminalLine, terminalLines, terminalText, terminalTextKeeping } from '../../src/core/terminal-text.js';

test('terminalText removes C0 and C1 controls and DEL, keeps newline and tab, and turns a carriage return into a newline', () => {
  assert.equal(terminalText('a\u0000b\u0007c\u001b[2Jd\u007fe\u0085f\u009bg\th\ni'), 'abc[2Jdef' + 'g\th\ni');
  assert.equal(terminalText('progress 10%\rprogress 20%\r\n'), 'progress 10%\nprogress 20%\n');
  assert.equal(terminalText('plain ünïcödé ✓ 字'), 'plain ünïcödé ✓ 字');
});

test('terminalLine makes one line: newlines, tabs and returns become spaces', () => {
  assert.equal(terminalLine('a\nb\tc\rd\u001b]0;x\u0007'), 'a b c d]0;x');
});

test('terminalLines cleans every string of a plain value and leaves the rest as it is', () => {
  const map = new Map([['k', '\u001b']]);
  const cleaned = terminalLines({ a: 'x\u001by', n: 1, list: ['\u009b', null], nested: { b: 'p\nq' }, map });
  assert.deepEqual(cleaned, { a: 'xy', n: 1, list: ['', null], nested: { b: 'p q' }, map });
  assert.equal(cleaned.map, map);
});

test('terminalTextKeeping lets only the listed sequences through', () => {
  assert.equal(terminalTextKeeping('\u001b[32mok\u001b[0m \u001b[2J', ['\u001b[32m', '\u001b[0m']), '\u001b[32mok\u001b[0m [2J');
  assert.equal(terminalTextKeeping('\u001b[32mok', []), '[32mok');
});
