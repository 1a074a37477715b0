import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectGpus, selectorCount } from '../../src/gpu/select.js';
import { parseNvidiaSmiCsv } from '../../src/gpu/parse.js';
import { UsageError } from '../../src/core/errors.js';
import { recorded } from './fixtures.js';

const gpus = parseNvidiaSmiCsv(recorded('two-gpus'));

test('all, none, indexes and UUIDs select GPUs', () => {
  assert.equal(selectGpus(gpus, 'all').length, 2);
  assert.equal(selectGpus(gpus, 'none').length, 0);
  assert.deepEqual(
    selectGpus(gpus, '1').map((g) => g.index),
    [1],
  );
  assert.deepEqual(
    selectGpus(gpus, '1, 0,1').map((g) => g.index),
    [1, 0],
  );
  assert.deepEqual(
    selectGpus(gpus, 'GPU-c47a9d12-6e5b-4f08-8b31-e2d05a9f6c18').map((g) => g.index),
    [1],
  );
});

test('an unknown GPU is a usage error that lists the GPUs there are', () => {
  assert.throws(
    () => selectGpus(gpus, '0,2'),
    (err: unknown) =>
      err instanceof UsageError && /no GPU "2"/.test(err.message) && err.message.includes('GPU-0b8e2f51') && Boolean(err.next),
  );
});

test('a selector counts the cards it names for planning', () => {
  assert.equal(selectorCount('all'), 1);
  assert.equal(selectorCount('0,1'), 2);
  assert.equal(selectorCount('none'), 0);
});
