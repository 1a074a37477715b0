import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RetryBudget } from '../../../src/daemon/routing/retry-budget.js';

test('the retry budget allows a minimum, then a share of the requests in the window', () => {
  const budget = new RetryBudget(20, 3);
  let now = 0;
  for (let i = 0; i < 3; i++) assert.equal(budget.tryRetry(now), true, 'the minimum');
  assert.equal(budget.tryRetry(now), false);
  for (let i = 0; i < 50; i++) budget.recordRequest(now);
  for (let i = 0; i < 7; i++) assert.equal(budget.tryRetry(now), true, '20% of 50 = 10 retries in all');
  assert.equal(budget.tryRetry(now), false);
  now = 20_000; // the window moved on
  assert.equal(budget.tryRetry(now), true);
});
