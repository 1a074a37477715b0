import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createFaultPicker } from '../../src/sim/faults.js';

const none = { fail429: 0, fail503: 0, fail500: 0, hang: 0, dieMidStream: 0 };

test('a rate of 1 faults every request and a rate of 0 none', () => {
  const always = createFaultPicker({ ...none, fail503: 1 }, 1);
  const never = createFaultPicker(none, 1);
  for (let i = 0; i < 50; i++) {
    assert.equal(always(), 'fail503');
    assert.equal(never(), undefined);
  }
});

test('the same seed gives the same faults, and a partial rate hits about that share', () => {
  const pick = (seed: number) => {
    const picker = createFaultPicker({ ...none, fail500: 0.3 }, seed);
    return Array.from({ length: 1000 }, () => picker());
  };
  assert.deepEqual(pick(42), pick(42));
  assert.notDeepEqual(pick(42), pick(43));
  const share = pick(42).filter((f) => f === 'fail500').length / 1000;
  assert.ok(share > 0.22 && share < 0.38, `share ${share}`);
});

test('when several faults would fire, the first in the documented order wins', () => {
  const picker = createFaultPicker({ fail429: 0, fail503: 1, fail500: 1, hang: 1, dieMidStream: 1 }, 1);
  assert.equal(picker(), 'fail503');
});
