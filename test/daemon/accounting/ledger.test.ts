import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IDLE, UsageLedger } from '../../../src/daemon/accounting/ledger.js';

const key = (over: Partial<{ upstream: string; model: string; tenant: string; keyId: string; currency: string }> = {}) => ({
  upstream: 'gpu0',
  model: 'qwen',
  tenant: 'default',
  keyId: '',
  currency: 'CNY',
  ...over,
});
const amounts = (tokens: number, cost = 0) => ({
  requests: 1,
  sessions: 0,
  promptTokens: tokens,
  cachedTokens: 0,
  completionTokens: 0,
  cost,
});

test('replies with the same day, upstream, model, tenant, key and currency sum into one row', () => {
  const ledger = new UsageLedger(() => Date.parse('2026-03-01T10:00:00Z'));
  ledger.add(key(), amounts(10, 0.5));
  ledger.add(key(), amounts(5, 0.25));
  ledger.add(key({ keyId: 'csk_abcdefgh' }), amounts(1));
  const rows = ledger.take();
  assert.equal(rows.length, 2);
  const row = rows.find((r) => r.keyId === '')!;
  assert.deepEqual(
    { day: row.day, requests: row.requests, promptTokens: row.promptTokens, cost: row.cost },
    { day: '2026-03-01', requests: 2, promptTokens: 15, cost: 0.75 },
  );
  assert.equal(ledger.take().length, 0, 'take() empties the ledger');
});

test('a new UTC day starts new rows', () => {
  let now = Date.parse('2026-03-01T23:59:59Z');
  const ledger = new UsageLedger(() => now);
  ledger.add(key(), amounts(1));
  now += 2000;
  ledger.add(key(), amounts(1));
  assert.deepEqual(
    ledger
      .take()
      .map((r) => r.day)
      .sort(),
    ['2026-03-01', '2026-03-02'],
  );
});

test("time-based cost is spread over the interval's rows by their tokens, or goes to an idle row", () => {
  const ledger = new UsageLedger(() => Date.parse('2026-03-01T10:00:00Z'));
  ledger.add(key({ tenant: 'a' }), amounts(30));
  ledger.add(key({ tenant: 'b' }), amounts(10));
  ledger.add(key({ upstream: 'cloud', currency: 'USD' }), amounts(100));
  ledger.spread('gpu0', 'CNY', 4);
  // The next interval has no traffic on gpu0.
  ledger.spread('gpu0', 'CNY', 1);
  const rows = ledger.take();
  const cost = (tenant: string) => rows.find((r) => r.upstream === 'gpu0' && r.tenant === tenant)!.cost;
  assert.equal(cost('a'), 3);
  assert.equal(cost('b'), 1);
  assert.equal(cost(IDLE), 1);
  assert.equal(rows.find((r) => r.upstream === 'cloud')!.cost, 0, 'another upstream gets none of it');
  const total = [...ledger.totals.values()].filter((t) => t.upstream === 'gpu0').reduce((sum, t) => sum + t.cost, 0);
  assert.equal(total, 5, 'the running totals for /metrics include it');
});

test('rows a failed write gave back are summed with what came since', () => {
  const ledger = new UsageLedger(() => Date.parse('2026-03-01T10:00:00Z'));
  ledger.add(key(), amounts(10, 1));
  const failed = ledger.take();
  ledger.add(key(), amounts(5, 0.5));
  ledger.restore(failed);
  const rows = ledger.take();
  assert.equal(rows.length, 1);
  assert.equal(rows[0]!.promptTokens, 15);
  assert.equal(rows[0]!.cost, 1.5);
  assert.equal(rows[0]!.requests, 2);
});
