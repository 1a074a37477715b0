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

storeTest(
  "two writers on one log chain each other's records; a writer whose chain moved to a new key writes nothing",
  async (t, backend) => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'cs-llm-audit-')), 'audit.key');
    // Two daemons' stores on one database or file, each with its writer.
    const a = await backend.open();
    const b = await backend.open();
    const ring = await a.audit.keyring(keyFile);
    const errors: string[] = [];
    const writerA = a.audit.writer(ring, { flushMs: 5, onError: (err) => errors.push((err as Error).message) });
    const writerB = b.audit.writer(ring, { flushMs: 5 });
    const written = async (writer: typeof writerA) => {
      writer.flush();
      while (writer.queued > 0 && errors.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    };
    // A, then B after it, then A again: A's next batch is chained from B's record, not from A's own last.
    for (const [writer, d] of [
      [writerA, 1],
      [writerB, 2],
      [writerA, 3],
      [writerB, 4],
    ] as const) {
      writer.append(entry(T0 + d * DAY, `s${d}`, null));
      await written(writer);
    }
    assert.deepEqual(errors, []);
    let check = await b.audit.verify(ring);
    assert.deepEqual([check.ok, check.records], [true, 4]);

    // `cs-llm audit new-key` while A runs on the old key: A's records wait (the daemon says to restart it).
    await b.audit.startKey(addAuditKey(keyFile));
    writerA.append(entry(T0 + 5 * DAY, 's5', null));
    await written(writerA);
    assert.match(errors[0] ?? '', /the audit chain is now under key .* restart the daemon/);
    check = await b.audit.verify((await b.audit.keyring(keyFile))!);
    assert.deepEqual([check.ok, check.records], [true, 4]);
  },
);
