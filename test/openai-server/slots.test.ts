import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SequenceSlots } from '../../src/openai-server/slots.js';

test('requests beyond the capacity wait in arrival order and get a slot as one is released', async () => {
  const slots = new SequenceSlots(1);
  const signal = new AbortController().signal;
  const releaseFirst = await slots.acquire(signal);
  const order: string[] = [];
  const second = slots.acquire(signal).then((release) => (order.push('second'), release));
  const third = slots.acquire(signal).then((release) => (order.push('third'), release));
  assert.equal(slots.running, 1);
  assert.equal(slots.waiting, 2);
  releaseFirst();
  releaseFirst(); // idempotent: must not free a second slot
  const releaseSecond = await second;
  assert.equal(slots.running, 1);
  assert.equal(slots.waiting, 1);
  releaseSecond();
  (await third)();
  assert.deepEqual(order, ['second', 'third']);
  assert.equal(slots.running, 0);
  assert.equal(slots.waiting, 0);
});

test('a waiter whose signal aborts leaves the queue and is rejected with the reason', async () => {
  const slots = new SequenceSlots(1);
  const release = await slots.acquire(new AbortController().signal);
  const controller = new AbortController();
  const waiting = slots.acquire(controller.signal);
  assert.equal(slots.waiting, 1);
  controller.abort(new Error('client went away'));
  await assert.rejects(waiting, /client went away/);
  assert.equal(slots.waiting, 0);
  release();
  assert.equal(slots.running, 0);
});
