import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admission } from '../../src/daemon/admission.js';
import { ApiError } from '../../src/daemon/api-error.js';

test('admission: free slots are granted at once, then queued FIFO, then refused with 429 and Retry-After', async () => {
  const admission = new Admission({ maxInFlight: 1, maxQueue: 1, maxQueueWaitMs: 10_000 });
  const first = admission.acquire();
  assert.equal(typeof first, 'function');
  const second = admission.acquire();
  assert.ok(second instanceof Promise);
  assert.equal(admission.waiting, 1);
  assert.throws(
    () => admission.acquire(),
    (err: unknown) => err instanceof ApiError && err.status === 429 && err.headers['retry-after'] === '5',
  );
  (first as () => void)();
  const release = await second;
  assert.equal(admission.running, 1);
  release();
  assert.equal(admission.running, 0);
});
