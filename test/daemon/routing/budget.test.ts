import assert from 'node:assert/strict';
import { test } from 'node:test';
import { zodSchemas } from '../../../src/core/config-schema.js';
import { UpstreamBudget } from '../../../src/daemon/routing/budget.js';
import { UpstreamMember, UpstreamSet, type MemberSpec } from '../../../src/daemon/routing/upstream-set.js';
import type { Upstream } from '../../../src/daemon/upstream.js';

const { priceSchema } = zodSchemas();

const client = (url: string) => ({ url }) as unknown as Upstream;

function member(name: string, extra: Partial<MemberSpec> = {}): UpstreamMember {
  return new UpstreamMember({ name, kind: 'local', weight: 1, models: {}, client: client(`http://${name}`), ...extra });
}

test('a budget counts requests in a window kept 2% longer than the provider window', () => {
  const budget = new UpstreamBudget({ rpm: 2, windowMs: 10_000 });
  assert.equal(budget.spanMs, 10_200);
  budget.take(0, 0);
  budget.take(1000, 0);
  assert.equal(budget.fits(5000, 0), false);
  assert.equal(budget.freeInMs(5000, 0), 5200);
  assert.equal(budget.fits(10_200, 0), true);
});

test('a request counts from when the upstream answered it, so one that got there late is not forgotten early', () => {
  const budget = new UpstreamBudget({ rpm: 1, windowMs: 10_000 });
  const entry = budget.take(0, 0);
  budget.answered(entry, 3000);
  assert.equal(budget.fits(10_200, 0), false);
  assert.equal(budget.freeInMs(10_200, 0), 3000);
  assert.equal(budget.fits(13_200, 0), true);
});

test('token estimates are corrected by the reply, which also teaches the reply size', () => {
  const budget = new UpstreamBudget({ tpm: 100, windowMs: 60_000 });
  const first = budget.take(0, 90);
  assert.equal(budget.fits(1, 20), false);
  budget.settle(first, 40, 30);
  assert.equal(budget.fits(1, 60), true, 'the reply was smaller than estimated');
  assert.equal(budget.completionAverage, 30);
  assert.deepEqual(budget.used(1), { requests: 1, tokens: 40 });
});

test('the router never picks an upstream without budget for the request', () => {
  const now = 0;
  const small = member('small', { limits: { rpm: 1, windowMs: 60_000 } });
  const big = member('big');
  const set = new UpstreamSet([small, big], { ejectAfter: 5, ejectBaseMs: 1000, sticky: false, now: () => now, random: () => 0 });
  assert.equal(set.pick(null, null), small, 'weighted: the first by the random draw');
  small.budget!.take(now, 0);
  for (let i = 0; i < 10; i++) assert.equal(set.pick(null, null), big);
  assert.equal(set.anyFits(null), true);
  const alone = new UpstreamSet([small], { ejectAfter: 5, ejectBaseMs: 1000, sticky: false, now: () => now });
  assert.equal(alone.anyFits(null), false);
  assert.equal(alone.pick(null, null), null);
  assert.equal(alone.budgetFreeInMs(null), 61_200);
});

test('cheapest routing takes the lowest price for the request that has budget, by weight among equal prices', () => {
  const price = (input: number, output: number) => priceSchema.parse({ input, output });
  const dear = member('dear', { price: price(1, 4) });
  const cheap = member('cheap', { price: price(0.2, 0.8), limits: { rpm: 1, windowMs: 60_000 } });
  const local = member('local', { price: priceSchema.parse({ monthly: 1000 }), weight: 0 });
  const set = new UpstreamSet([dear, cheap, local], { ejectAfter: 5, ejectBaseMs: 1000, sticky: false, routing: 'cheapest', now: () => 0 });
  const estimate = { prompt: 100, completion: 50 };
  assert.equal(set.pick(null, null, estimate), cheap, 'the backup (weight 0) is not used while a weighted one has room');
  cheap.budget!.take(0, 0);
  assert.equal(set.pick(null, null, estimate), dear);
  // Input cheap and output dear against the opposite: the request's shape decides.
  const a = member('a', { price: price(0.1, 10) });
  const b = member('b', { price: price(1, 1) });
  const shaped = new UpstreamSet([a, b], { ejectAfter: 5, ejectBaseMs: 1000, sticky: false, routing: 'cheapest' });
  assert.equal(shaped.pick(null, null, { prompt: 10_000, completion: 10 }), a);
  assert.equal(shaped.pick(null, null, { prompt: 10, completion: 10_000 }), b);
});
