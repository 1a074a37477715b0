import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker } from '../../../src/daemon/tools/breaker.js';

test('the breaker opens after N failures, lets one trial through after the cool-down, and closes on its success', () => {
  let now = 0;
  const b = new CircuitBreaker(3, 1000, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(b.tryAcquire(), true);
    b.failure();
  }
  assert.equal(b.state, 'open');
  assert.equal(b.tryAcquire(), false);
  now = 1000;
  assert.equal(b.state, 'half-open');
  assert.equal(b.tryAcquire(), true);
  assert.equal(b.tryAcquire(), false, 'one trial at a time');
  b.failure();
  assert.equal(b.state, 'open', 'a failed trial opens it again');
  now = 2000;
  assert.equal(b.tryAcquire(), true);
  b.success();
  assert.equal(b.state, 'closed');
});

test('a half-open trial abandoned (its client went away) lets the next trial through, without a verdict', () => {
  let now = 0;
  const b = new CircuitBreaker(1, 1000, () => now);
  b.failure();
  now = 1000;
  assert.equal(b.tryAcquire(), true);
  b.abandon();
  assert.equal(b.state, 'half-open');
  assert.equal(b.tryAcquire(), true);
});
