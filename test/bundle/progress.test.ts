import assert from 'node:assert/strict';
import { test } from 'node:test';
import { byteCounter, type BundleProgress } from '../../src/bundle/progress.js';

test('an estimated total that the bytes outgrow becomes unknown, never a share over 100%, and the end reports the real total', () => {
  const events: BundleProgress[] = [];
  // A tiny image: docker reports 28 bytes of layers, `docker save` streams 10 KiB of tar.
  const counter = byteCounter((e) => events.push(e), 'image', 'saving image x', 28, 1024);
  counter.add(20);
  counter.add(4096);
  counter.add(6124);
  counter.finish('saved');
  const bytes = events.filter((e) => e.type === 'bytes');
  assert.deepEqual(
    bytes.map((e) => [e.doneBytes, e.totalBytes]),
    [
      [0, 28],
      [4116, null],
      [10240, null],
      [10240, 10240],
    ],
  );
  for (const e of bytes) assert.ok(e.totalBytes === null || e.doneBytes <= e.totalBytes);
  assert.deepEqual(events.at(-1), { type: 'part-done', part: 'image', message: 'saved' });
});
