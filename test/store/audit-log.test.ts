// The audit log through the Store's interface, on both stores: records written by the writer chain and verify,
// are read back by time, tenant and session, pruned behind a signed anchor that the rest verifies from, and a
// new key starts where the last record ends. (audit-chain.test.ts and audit.retention.test.ts check the chain's
// tampering cases on SQLite, through its internals.)
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { addAuditKey } from '../../src/store/audit-key.js';
import type { AuditEntry } from '../../src/store/audit.js';
import { storeTest } from '../helpers/stores.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

const entry = (at: number, sessionId: string | null, tenant: string | null): AuditEntry => ({
  at,
  keyId: null,
  method: 'POST',
  route: '/v1/chat/completions',
  sessionId,
  upstream: 'engine',
  status: 200,
  outcome: 'ok',
  errorCode: null,
  promptTokens: 10,
  completionTokens: 5,
  latencyMs: 12.345,
  upstreamMs: 11,
  tenant,
});

storeTest('audit records chain, read back, prune behind a signed anchor and go on under a new key', async (t, backend) => {
  const keyFile = join(mkdtempSync(join(tmpdir(), 'cs-llm-audit-')), 'audit.key');
  const store = await backend.open();
  const ring = await store.audit.keyring(keyFile);
  const writer = store.audit.writer(ring, { flushMs: 10, maxBatch: 4 });
  for (let d = 0; d < 10; d++) writer.append(entry(T0 + d * DAY, `s${d % 3}`, d % 2 === 0 ? 'shop-a' : 'shop-b'));
  writer.close();
  // Closing the store writes what the writer still holds; a new one reads it all.
  await store.close();
  const reopened = await backend.open();

  let check = await reopened.audit.verify(ring);
  assert.deepEqual([check.ok, check.records], [true, 10]);
  const since = [];
  for await (const r of reopened.audit.since(T0 + 5 * DAY, 'shop-b')) since.push(r.seq);
  assert.deepEqual(since, [6, 8, 10]);
  assert.deepEqual(
    (await reopened.audit.forSession('shop-a', 's0')).map((r) => [r.seq, r.latencyMs]),
    [
      [1, 12.345],
      [7, 12.345],
    ],
  );

  assert.equal(await reopened.audit.prune(ring, T0 + 4 * DAY, T0 + 20 * DAY), 4);
  assert.deepEqual(await reopened.audit.anchor(), {
    seq: 4,
    hash: (await backend.rows<{ hash: string }>('SELECT hash FROM audit_anchor'))[0]!.hash,
    prunedRecords: 4,
    prunedAt: T0 + 20 * DAY,
    keyId: ring.current.id,
  });
  check = await reopened.audit.verify(ring);
  assert.deepEqual([check.ok, check.records, check.anchor?.seq], [true, 6, 4]);

  const next = addAuditKey(keyFile);
  assert.deepEqual(await reopened.audit.startKey(next), { fromSeq: 11, previousKeyId: ring.current.id });
  const later = reopened.audit.writer(next, { flushMs: 10 });
  later.append(entry(T0 + 11 * DAY, null, null));
  later.close();
  await reopened.close();
  const last = await backend.open();
  check = await last.audit.verify(next);
  assert.deepEqual([check.ok, check.records, check.keys.map((k) => k.fromSeq)], [true, 7, [1, 11]]);
  // Without the file's keys nothing keyed can be checked: verify names the first record and the key.
  check = await last.audit.verify(null);
  assert.equal(check.ok, false);
  assert.equal(check.broken?.keyMissing, ring.current.id);
});
