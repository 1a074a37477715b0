import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { EnvironmentError, TimeoutError } from '../../src/core/errors.js';
import { createPullTracker, followPull, pullFailure } from '../../src/engine/pull.js';

const A = 'aaaaaaaaaaaa';
const B = 'bbbbbbbbbbbb';

test('per-layer bytes are summed into one downloaded-of-total figure', () => {
  const t = createPullTracker('img:1');
  t.update({ status: 'Pulling from cs-llm/sim', id: '1' });
  t.update({ status: 'Pulling fs layer', id: A });
  t.update({ status: 'Pulling fs layer', id: B });
  t.update({ status: 'Downloading', id: A, progressDetail: { current: 100, total: 1000 } });
  const p = t.update({ status: 'Downloading', id: B, progressDetail: { current: 50, total: 500 } });
  assert.deepEqual({ d: p.downloadedBytes, t: p.totalBytes, l: p.layers, done: p.layersDone }, { d: 150, t: 1500, l: 2, done: 0 });
  t.update({ status: 'Download complete', id: A });
  t.update({ status: 'Extracting', id: A, progressDetail: { current: 10, total: 1000 } });
  const q = t.update({ status: 'Pull complete', id: A });
  assert.equal(q.downloadedBytes, 1050);
  assert.equal(q.layersDone, 1);
  const r = t.update({ status: 'Already exists', id: 'cccccccccccc' });
  assert.equal(r.layers, 3);
  assert.equal(r.layersDone, 2);
  assert.equal(r.status, 'Already exists');
});

test('events about the whole image (no layer id) change only the status', () => {
  const t = createPullTracker('img:1');
  const p = t.update({ status: 'Digest: sha256:abc' });
  assert.equal(p.layers, 0);
  assert.equal(p.status, 'Digest: sha256:abc');
});

function lines(stream: PassThrough, events: object[]): void {
  for (const e of events) stream.write(`${JSON.stringify(e)}\r\n`);
}

test('a pull stream resolves at its end and reports progress on the way', async () => {
  const stream = new PassThrough();
  const seen: number[] = [];
  const done = followPull(stream, createPullTracker('img:1'), (p) => seen.push(p.downloadedBytes), 10_000);
  lines(stream, [{ status: 'Downloading', id: A, progressDetail: { current: 5, total: 10 } }]);
  // A line split across chunks is still read whole.
  const last = JSON.stringify({ status: 'Pull complete', id: A });
  stream.write(last.slice(0, 10));
  stream.end(`${last.slice(10)}\n`);
  await done;
  assert.deepEqual(seen, [5, 10]);
});

test('an in-stream {"error"} line rejects the pull instead of hanging', async () => {
  const stream = new PassThrough();
  const done = followPull(stream, createPullTracker('img:1'), undefined, 10_000);
  lines(stream, [
    { status: 'Pulling fs layer', id: A },
    { errorDetail: { message: 'unauthorized: authentication required' }, error: 'unauthorized: authentication required' },
  ]);
  await assert.rejects(done, /unauthorized/);
});

test('a stream error rejects the pull', async () => {
  const stream = new PassThrough();
  const done = followPull(stream, createPullTracker('img:1'), undefined, 10_000);
  stream.destroy(new Error('socket hang up'));
  await assert.rejects(done, /socket hang up/);
});

test('a pull that goes silent fails with a TimeoutError', async () => {
  const stream = new PassThrough();
  const done = followPull(stream, createPullTracker('img:1'), undefined, 50);
  await assert.rejects(done, (err: unknown) => err instanceof TimeoutError && /no progress/.test(err.message));
});

test('a 404 manifest-unknown pull error is explained as an image that is not there', () => {
  const err = pullFailure('127.0.0.1:5000/x:nope', {
    statusCode: 404,
    json: { message: 'manifest for 127.0.0.1:5000/x:nope not found: manifest unknown: manifest unknown' },
  });
  assert.ok(err instanceof EnvironmentError);
  assert.match(err.message, /cannot pull image 127\.0\.0\.1:5000\/x:nope: the engine image is not available/);
  assert.match((err as EnvironmentError).next!, /--image/);
});
