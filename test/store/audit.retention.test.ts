import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { auditAnchor, createAuditWriter, pruneAuditBefore, type AuditEntry } from '../../src/store/audit.js';
import { createAuditKeyring, type AuditKeyring } from '../../src/store/audit-key.js';
import { verifyAuditChain } from '../../src/store/audit-verify.js';
import type { SqliteDatabase } from '../../src/store/database.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { cli as runCli } from '../daemon/harness.js';

const DAY = 86_400_000;
const T0 = Date.parse('2026-01-01T00:00:00Z');

function entry(at: number, sessionId: string | null = null): AuditEntry {
  return {
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
    latencyMs: 12.5,
    upstreamMs: 11,
  };
}

/** The store, its connection (the functions of audit.ts take it) and an audit key. */
type TestStore = Store & { ring: AuditKeyring; db: SqliteDatabase };

function freshStore(t: { after(fn: () => Promise<void>): void }): TestStore {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-audit-'));
  const { store, db } = openSqliteStore({ file: join(dir, 'cs-llm.db') });
  t.after(() => store.close());
  return Object.assign(store, { ring: createAuditKeyring(join(dir, 'audit.key')), db });
}

/** Ten records, one a day from T0, written as the daemon writes them. */
function tenDays(store: TestStore): void {
  const writer = createAuditWriter(store.db, store.ring);
  for (let d = 0; d < 10; d++) writer.append(entry(T0 + d * DAY, `session-${d}`));
  writer.close();
}

const seqs = (store: TestStore) =>
  (store.db.prepare('SELECT seq FROM audit_log ORDER BY seq').all() as Array<{ seq: number }>).map((r) => r.seq);

test('pruning removes the oldest records behind an anchor; the rest verifies and new records extend the chain', (t) => {
  const store = freshStore(t);
  tenDays(store);
  const hashOf4 = (store.db.prepare('SELECT hash FROM audit_log WHERE seq = 4').get() as { hash: string }).hash;

  assert.equal(pruneAuditBefore(store.db, store.ring, T0 + 4 * DAY, T0 + 20 * DAY), 4);
  assert.deepEqual(seqs(store), [5, 6, 7, 8, 9, 10]);
  assert.deepEqual(auditAnchor(store.db), {
    seq: 4,
    hash: hashOf4,
    prunedRecords: 4,
    prunedAt: T0 + 20 * DAY,
    keyId: store.ring.current.id,
  });
  const check = verifyAuditChain(store.db, store.ring);
  assert.equal(check.ok, true);
  assert.equal(check.records, 6);

  // Nothing older left: a second prune at the same time is a no-op.
  assert.equal(pruneAuditBefore(store.db, store.ring, T0 + 4 * DAY, T0 + 21 * DAY), 0);

  const writer = createAuditWriter(store.db, store.ring);
  writer.append(entry(T0 + 11 * DAY));
  writer.close();
  assert.deepEqual(seqs(store).slice(-1), [11]);
  assert.equal(verifyAuditChain(store.db, store.ring).ok, true);
});

test('after every record was pruned, the next record continues the numbering and the chain from the anchor', (t) => {
  const store = freshStore(t);
  tenDays(store);
  assert.equal(pruneAuditBefore(store.db, store.ring, T0 + 100 * DAY, T0 + 100 * DAY, 3), 3, 'at most limit records per call');
  let total = 3;
  for (let n = -1; n !== 0; total += n) n = pruneAuditBefore(store.db, store.ring, T0 + 100 * DAY, T0 + 100 * DAY, 3);
  assert.equal(total, 10);
  assert.deepEqual(seqs(store), []);
  assert.equal(auditAnchor(store.db)!.prunedRecords, 10);

  const writer = createAuditWriter(store.db, store.ring);
  writer.append(entry(T0 + 101 * DAY));
  writer.close();
  assert.deepEqual(seqs(store), [11]);
  const check = verifyAuditChain(store.db, store.ring);
  assert.equal(check.ok, true, JSON.stringify(check.broken));
});

test('the retention anchor opens only the head of the log: other deletes, a moved-back or removed anchor are refused, and tampering is still found', (t) => {
  const store = freshStore(t);
  tenDays(store);
  pruneAuditBefore(store.db, store.ring, T0 + 3 * DAY, T0 + 20 * DAY);
  assert.throws(() => store.db.prepare('DELETE FROM audit_log WHERE seq = 7').run(), /append-only/);
  assert.throws(() => store.db.prepare('UPDATE audit_anchor SET seq = 1').run(), /only moves forward/);
  assert.throws(() => store.db.prepare('DELETE FROM audit_anchor').run(), /cannot be removed/);

  // Someone who moves the anchor forward by hand to delete records, even copying the hash of the last record
  // deleted so the next one follows, cannot sign the moved anchor without the audit key.
  const hashOf5 = (store.db.prepare('SELECT hash FROM audit_log WHERE seq = 5').get() as { hash: string }).hash;
  store.db.prepare('UPDATE audit_anchor SET seq = 5, hash = ?, pruned_records = 5').run(hashOf5);
  store.db.prepare('DELETE FROM audit_log WHERE seq <= 5').run();
  const check = verifyAuditChain(store.db, store.ring);
  assert.equal(check.ok, false);
  assert.equal(check.broken!.seq, 6);
  assert.match(check.broken!.reason, /retention anchor \(records up to 5 pruned\) was altered/);
});

test('the daemon maintenance prunes by store.auditRetentionDays, and 0 keeps everything', async (t) => {
  for (const [retentionDays, expected] of [
    [5, [7, 8, 9, 10]],
    [0, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]],
  ] as const) {
    const store = freshStore(t);
    tenDays(store);
    // "now" is day 11: records of days 0-5 are older than 5 days (day 6 is exactly 5 days old and kept).
    const pruned = new Promise<number>((resolve) => {
      const stop = store.maintenance.start({
        sweepIntervalMs: 60_000,
        auditRetentionMs: retentionDays * DAY,
        auditKey: store.ring,
        now: () => T0 + 11 * DAY,
        onAuditPrune: (n) => resolve(n),
      });
      t.after(stop);
      if (retentionDays === 0) setImmediate(() => setImmediate(() => resolve(0)));
    });
    assert.equal(await pruned, retentionDays === 0 ? 0 : 6);
    assert.deepEqual(seqs(store), [...expected]);
    assert.equal(verifyAuditChain(store.db, store.ring).ok, true);
  }
});

test('cs-llm audit prune --older-than deletes the old records and audit verify says where the chain starts', async (t) => {
  const store = freshStore(t);
  const writer = createAuditWriter(store.db, store.ring);
  const now = Date.now();
  for (const age of [40, 35, 31, 2, 1]) writer.append(entry(now - age * DAY, 'erased-customer'));
  writer.close();
  const file = store.file;
  await store.close();
  const env = { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-audit-home-')) };

  const keyFile = store.ring.file;
  const pruned = await runCli(['audit', 'prune', '--older-than', '30d', '--db', file, '--key-file', keyFile, '--json'], { env });
  assert.equal(pruned.exitCode, 0, pruned.stderr);
  const result = JSON.parse(pruned.stdout) as { pruned: number; scrubbed: boolean; anchor: { seq: number; prunedRecords: number } };
  assert.equal(result.pruned, 3);
  assert.equal(result.scrubbed, true);
  assert.equal(result.anchor.seq, 3);

  const verified = await runCli(['audit', 'verify', '--db', file, '--key-file', keyFile], { env });
  assert.equal(verified.exitCode, 0, verified.stderr);
  assert.match(verified.stdout, /audit log ok: 2 record\(s\), hash chain intact, from record 4 \(3 older record\(s\) pruned/);

  const bad = await runCli(['audit', 'prune', '--older-than', 'last tuesday', '--db', file], { env });
  assert.notEqual(bad.exitCode, 0);
  assert.match(bad.stderr, /--older-than "last tuesday" is neither a duration nor a time/);
});
