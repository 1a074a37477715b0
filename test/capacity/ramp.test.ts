import assert from 'node:assert/strict';
import { test } from 'node:test';
import { kneeOf, nextRate, summarizeStep, type StepRow, type TurnOutcome } from '../../src/capacity/ramp.js';

const ramp = { start: 2, factor: 2, maxRate: 100, maxSteps: 20, refine: 2 };
const limits = { sloP95Ms: 1000, maxErrorShare: 0.01 };
const ok = (e2eMs: number): TurnOutcome => ({ result: 'ok', e2eMs, ttftMs: e2eMs / 4, completionTokens: 10 });

function row(rate: number, held: boolean): StepRow {
  return summarizeStep(
    Array.from({ length: 20 }, () => ok(held ? 500 : 3000)),
    rate,
    10,
    limits,
  );
}

test('a step holds when its p95 is within the SLO and few turns failed; its figures are per second', () => {
  const outcomes = [
    ...Array.from({ length: 99 }, (_, i) => ok(100 + i)),
    { result: 'error' as const, e2eMs: 5, ttftMs: null, completionTokens: 0, problem: 'HTTP 502' },
  ];
  const held = summarizeStep(outcomes, 10, 10, limits);
  assert.equal(held.ok, true);
  assert.equal(held.completedPerSecond, 9.9);
  assert.equal(held.tokensPerSecond, 99);
  assert.equal(held.errors, 1);
  assert.equal(held.problem, 'HTTP 502');
  assert.equal(held.e2e!.p50, 0.149);
  const failing = summarizeStep(
    [...outcomes, { result: 'rate_limited', e2eMs: 5, ttftMs: null, completionTokens: 0, problem: 'HTTP 429' }],
    10,
    10,
    limits,
  );
  assert.equal(failing.ok, false, '2 of 100 failed: over 1%');
  assert.match(failing.why!, /2\.0% of turns failed/);
  const slow = summarizeStep(
    Array.from({ length: 20 }, () => ok(1500)),
    10,
    10,
    limits,
  );
  assert.match(slow.why!, /p95 1\.50 s is over the SLO/);
});

test('the rate grows by the factor until a step breaks, then narrows between the last that held and the first that broke', () => {
  const rows: StepRow[] = [];
  const held = (rate: number) => rate <= 20;
  const seen: number[] = [];
  for (let rate = nextRate(rows, ramp); rate !== null; rate = nextRate(rows, ramp)) {
    seen.push(rate);
    rows.push(row(rate, held(rate)));
  }
  assert.deepEqual(seen, [2, 4, 8, 16, 32, 22.6, 19]);
  assert.equal(kneeOf(rows)!.rate, 19);
});

test('the ramp stops at the highest rate allowed, the step limit, or a first step that already breaks', () => {
  const capped = { ...ramp, maxRate: 10 };
  assert.equal(nextRate([row(2, true), row(4, true), row(8, true)], capped), 10);
  assert.equal(nextRate([row(2, true), row(4, true), row(8, true), row(10, true)], capped), null);
  assert.equal(nextRate([row(2, true)], { ...ramp, maxSteps: 1 }), null);
  assert.equal(nextRate([row(2, false)], ramp), null);
  assert.equal(kneeOf([row(2, false)]), null);
});
