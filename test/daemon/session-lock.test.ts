import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionBusyError, SessionLocks, SessionQueueFullError } from '../../src/daemon/session-lock.js';

test('a second holder of the same session waits for the first; other sessions do not', async () => {
  const locks = new SessionLocks();
  const order: string[] = [];
  const releaseA = await locks.acquire('default', 's', 1000);
  const second = locks.acquire('default', 's', 1000).then((release) => {
    order.push('second got s');
    return release;
  });
  const other = await locks.acquire('default', 't', 1000);
  order.push('t without waiting');
  order.push('first releases s');
  releaseA();
  const releaseB = await second;
  assert.deepEqual(order, ['t without waiting', 'first releases s', 'second got s']);
  releaseB();
  releaseB(); // a second call is harmless
  other();
  assert.equal(locks.size, 0);
});

test('a waiter that runs out of time gets SessionBusyError and leaves the queue', async () => {
  const locks = new SessionLocks();
  const release = await locks.acquire('default', 's', 1000);
  await assert.rejects(locks.acquire('default', 's', 5), (err: unknown) => err instanceof SessionBusyError && err.sessionId === 's');
  release();
  assert.equal(locks.size, 0);
  const again = await locks.acquire('default', 's', 5);
  again();
});

test('waiters on one session are bounded: past maxWaiters a request is refused at once; other sessions are not affected', async () => {
  const locks = new SessionLocks();
  const release = await locks.acquire('default', 's', 1000, 1);
  const waiter = locks.acquire('default', 's', 1000, 1);
  await assert.rejects(
    locks.acquire('default', 's', 1000, 1),
    (err: unknown) => err instanceof SessionQueueFullError && err.sessionId === 's',
  );
  const other = await locks.acquire('default', 't', 1000, 1);
  release();
  (await waiter)();
  other();
  assert.equal(locks.size, 0);
  assert.equal(locks.waiting, 0);
});
