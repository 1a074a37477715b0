import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseBenchArgs } from '../../src/bench/args.js';

test('npm run bench: the flags it knows are read, and a mistyped flag or value is refused by name', () => {
  assert.deepEqual(parseBenchArgs(['--quick', '--duration', '2', '--only', 'postgres']), {
    quick: true,
    help: false,
    duration: '2',
    only: 'postgres',
  });
  assert.equal(parseBenchArgs(['-h']).help, true);
  assert.throws(() => parseBenchArgs(['--qiuck']), /Unknown option '--qiuck'/);
  assert.throws(() => parseBenchArgs(['--duration', 'abc']), /--duration wants a number of 0 or more, got "abc"/);
  assert.throws(() => parseBenchArgs(['--sessions=-5']), /--sessions wants a number/);
  assert.throws(() => parseBenchArgs(['--only', 'redact']), /--only wants one of redaction, postgres/);
  assert.throws(() => parseBenchArgs(['extra']), /positional/);
});
