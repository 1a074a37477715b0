import assert from 'node:assert/strict';
import { test } from 'node:test';
import { similarity } from '../../src/daemon/shadow.js';

test('shadow similarity is word overlap', () => {
  assert.equal(similarity('Your order is in transit.', 'your order is IN transit'), 1);
  assert.equal(similarity('a b', 'c d'), 0);
  assert.equal(similarity('a b c', 'a b d'), 0.5);
});
