import assert from 'node:assert/strict';
import { storeTest } from '../helpers/stores.js';
import type { UsageRow } from '../../src/store/usage.js';

const row = (over: Partial<UsageRow>): UsageRow => ({
  day: '2026-03-01',
  upstream: 'cloud',
  model: 'qwen',
  tenant: 'default',
  keyId: '',
  currency: 'USD',
  requests: 1,
  sessions: 0,
  promptTokens: 100,
  cachedTokens: 0,
  completionTokens: 20,
  cost: 0.000027,
  ...over,
});

storeTest('usage rows are summed per key across flushes and across a reopen, money without drift', async (t, backend) => {
  let store = await backend.open();
  // A thousand flushes of a tiny cost each: summed as integers of 1e-9, the total is exact.
  for (let i = 0; i < 1000; i++) await store.usage.add([row({})]);
  await store.usage.add([row({ keyId: 'csk_abcdefgh', sessions: 1 }), row({ day: '2026-03-02' })]);
  await store.close();
  store = await backend.open();
  const rows = await store.usage.query({ fromDay: '2026-03-01', toDay: '2026-03-01' });
  assert.equal(rows.length, 2);
  const plain = rows.find((r) => r.keyId === '')!;
  assert.equal(plain.requests, 1000);
  assert.equal(plain.promptTokens, 100_000);
  assert.equal(plain.cost, 0.027);
  assert.equal(rows.find((r) => r.keyId !== '')!.sessions, 1);
});

storeTest('a query covers the days asked for, the later ones when no end is given', async (t, backend) => {
  const store = await backend.open();
  await store.usage.add(['2026-02-28', '2026-03-01', '2026-03-02'].map((day) => row({ day })));
  assert.deepEqual(
    (await store.usage.query({ fromDay: '2026-03-01' })).map((r) => r.day),
    ['2026-03-01', '2026-03-02'],
  );
  assert.deepEqual(
    (await store.usage.query({ fromDay: '2026-02-01', toDay: '2026-02-28' })).map((r) => r.day),
    ['2026-02-28'],
  );
});
