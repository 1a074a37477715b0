import assert from 'node:assert/strict';
import { test } from 'node:test';
import { zodSchemas } from '../../../src/core/config-schema.js';
import { HOURS_PER_MONTH, marginalCost, timeCost, tokenCost } from '../../../src/daemon/accounting/cost.js';

const { priceSchema } = zodSchemas();

const near = (actual: number, expected: number) => assert.ok(Math.abs(actual - expected) < 1e-12, `${actual} is not ${expected}`);

test('tokens cost their price per million, cached prompt tokens at the cached price', () => {
  const price = priceSchema.parse({ input: 0.15, output: 0.6, cachedInput: 0.075, currency: 'USD' });
  near(tokenCost(price, { prompt: 1_000_000, cached: 0, completion: 0 }), 0.15);
  near(tokenCost(price, { prompt: 1000, cached: 400, completion: 500 }), (600 * 0.15 + 400 * 0.075 + 500 * 0.6) / 1e6);
});

test('a price per 1K tokens is a thousand times one per 1M', () => {
  const perK = priceSchema.parse({ input: 0.0008, output: 0.002, per: '1K', currency: 'CNY' });
  near(tokenCost(perK, { prompt: 2000, cached: 0, completion: 1000 }), 0.0016 + 0.002);
});

test('without cachedInput, cached prompt tokens cost the input price', () => {
  const price = priceSchema.parse({ input: 1, output: 2 });
  near(tokenCost(price, { prompt: 100, cached: 100, completion: 0 }), 100 / 1e6);
});

test('no price and a time-only price cost nothing per token', () => {
  assert.equal(tokenCost(undefined, { prompt: 5, cached: 0, completion: 5 }), 0);
  assert.equal(tokenCost(priceSchema.parse({ monthly: 100 }), { prompt: 5, cached: 0, completion: 5 }), 0);
  assert.equal(marginalCost(priceSchema.parse({ electricityPerKWh: 1 }), 1000, 1000), 0);
});

test('a monthly amount is spread over 730 hours, power at its price per kWh', () => {
  const hour = 3_600_000;
  near(timeCost(priceSchema.parse({ monthly: 730, currency: 'CNY' }), hour, null), 1);
  // 400 W for 30 minutes is 0.2 kWh.
  near(timeCost(priceSchema.parse({ electricityPerKWh: 0.5, currency: 'CNY' }), hour / 2, 400), 0.1);
  // No power reading: only the monthly part.
  near(timeCost(priceSchema.parse({ electricityPerKWh: 0.5, monthly: 73, currency: 'CNY' }), hour, null), 0.1);
  assert.equal(HOURS_PER_MONTH, 730);
});
