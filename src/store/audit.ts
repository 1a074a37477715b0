/*
 * The audit log: one record per API request, never message contents. Append-only (triggers refuse UPDATE and
 * DELETE) and hash-chained: each record's hash is sha256 over the previous record's hash and a canonical
 * encoding of its own fields, so changing, removing or reordering a record breaks the chain at that record.
 */

import { createHash } from 'node:crypto';
import type { SqliteDatabase } from './database.js';

export interface AuditEntry {
  /** ms since the epoch when the request finished. */
  at: number;
  /** The API key's public prefix (as `cs-llm keys list` shows it), never the key; null when no key was needed. */
  keyId: string | null;
  method: string;
  route: string;
  sessionId: string | null;
  upstream: string | null;
  status: number;
  outcome: string;
  errorCode: string | null;
  promptTokens: number | null;
  completionTokens: number | null;
  latencyMs: number;
  upstreamMs: number;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  prevHash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** Milliseconds kept to the microsecond, so the value hashed is the value stored. */
const ms = (n: number) => Math.round(n * 1000) / 1000;

/** The fields in a fixed order, as JSON: the canonical encoding that is hashed. */
export function canonicalAuditRecord(seq: number, e: AuditEntry): string {
  return JSON.stringify([
    seq,
    e.at,
    e.keyId,
    e.method,
    e.route,
    e.sessionId,
    e.upstream,
    e.status,
    e.outcome,
    e.errorCode,
    e.promptTokens,
    e.completionTokens,
    ms(e.latencyMs),
    ms(e.upstreamMs),
  ]);
}

export function auditHash(prevHash: string, seq: number, entry: AuditEntry): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalAuditRecord(seq, entry)).digest('hex');
}

interface AuditRow {
  seq: number;
  at: number;
  key_id: string | null;
  method: string;
  route: string;
  session_id: string | null;
  upstream: string | null;
  status: number;
  outcome: string;
  error_code: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  latency_ms: number;
  upstream_ms: number;
  prev_hash: string;
  hash: string;
}

function toRecord(r: AuditRow): AuditRecord {
  return {
    seq: r.seq,
    at: r.at,
    keyId: r.key_id,
    method: r.method,
    route: r.route,
    sessionId: r.session_id,
    upstream: r.upstream,
    status: r.status,
    outcome: r.outcome,
    errorCode: r.error_code,
    promptTokens: r.prompt_tokens,
    completionTokens: r.completion_tokens,
    latencyMs: r.latency_ms,
    upstreamMs: r.upstream_ms,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditWriter {
  /** Queues a record; it is written with others in one transaction within flushMs (or at maxBatch). */
  append(entry: AuditEntry): void;
  /** Writes what is queued now. */
  flush(): void;
  /** Flushes and stops the timer. */
  close(): void;
  /** Records queued and not yet written. */
  readonly queued: number;
}

/**
 * Writes audit records off the request path: the observer only pushes to an array; a timer writes the batch
 * in one transaction, reading the last hash inside it so that two writers (a daemon restarted over an old
 * one's tail) still extend one chain.
 */
export function createAuditWriter(
  db: SqliteDatabase,
  options: { flushMs?: number; maxBatch?: number; onError?: (err: unknown) => void } = {},
): AuditWriter {
  const flushMs = options.flushMs ?? 100;
  const maxBatch = options.maxBatch ?? 512;
  const last = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  // After a prune that took every record, the chain goes on from the anchor.
  const anchor = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_anchor WHERE id = 1');
  const insert = db.prepare(
    `INSERT INTO audit_log (seq, at, key_id, method, route, session_id, upstream, status, outcome, error_code, prompt_tokens,
       completion_tokens, latency_ms, upstream_ms, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const write = db.transaction((entries: AuditEntry[]) => {
    const tail = last.get() ?? anchor.get();
    let seq = tail?.seq ?? 0;
    let prev = tail?.hash ?? GENESIS_HASH;
    for (const e of entries) {
      seq++;
      const hash = auditHash(prev, seq, e);
      insert.run(
        seq,
        e.at,
        e.keyId,
        e.method,
        e.route,
        e.sessionId,
        e.upstream,
        e.status,
        e.outcome,
        e.errorCode,
        e.promptTokens,
        e.completionTokens,
        ms(e.latencyMs),
        ms(e.upstreamMs),
        prev,
        hash,
      );
      prev = hash;
    }
  });
  let queue: AuditEntry[] = [];
  let timer: NodeJS.Timeout | null = null;
  let closed = false;

  const flush = () => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    if (queue.length === 0 || !db.open) return;
    const batch = queue;
    queue = [];
    try {
      write(batch);
    } catch (err) {
      // Kept for the next flush (the database may be busy for a moment); never thrown at a request.
      queue = batch.concat(queue);
      options.onError?.(err);
      if (!closed) schedule();
    }
  };
  const schedule = () => {
    if (timer || closed) return;
    timer = setTimeout(flush, flushMs);
    timer.unref();
  };
  return {
    get queued() {
      return queue.length;
    },
    append(entry) {
      if (closed) return;
      queue.push(entry);
      if (queue.length >= maxBatch) setImmediate(flush);
      else schedule();
    },
    flush,
    close() {
      closed = true;
      flush();
    },
  };
}

export interface ChainCheck {
  ok: boolean;
  /** Records read. */
  records: number;
  /** The first record that does not fit the chain, and why. */
  broken?: { seq: number; reason: string };
  /** Where the chain starts when its head was pruned (retention). */
  anchor?: AuditAnchor;
}

export interface AuditAnchor {
  /** The last pruned record: the chain goes on from its hash. */
  seq: number;
  hash: string;
  /** Records pruned in all, and when the last prune ran (ms). */
  prunedRecords: number;
  prunedAt: number;
}

export function auditAnchor(db: SqliteDatabase): AuditAnchor | undefined {
  const row = db
    .prepare<[], { seq: number; hash: string; pruned_records: number; pruned_at: number }>('SELECT * FROM audit_anchor WHERE id = 1')
    .get();
  return row ? { seq: row.seq, hash: row.hash, prunedRecords: row.pruned_records, prunedAt: row.pruned_at } : undefined;
}

/**
 * Retention: deletes the oldest records, those before the first record at or after `before` (ms), at most
 * `limit` of them, in one transaction. The last one deleted becomes the anchor (its seq and hash), so the rest
 * of the chain still verifies and new records extend it; the triggers refuse any other delete. Returns how
 * many were deleted (call again while it returns `limit`).
 */
export function pruneAuditBefore(db: SqliteDatabase, before: number, now: number, limit = 5000): number {
  return db.transaction(() => {
    const floor = auditAnchor(db)?.seq ?? 0;
    const firstKept =
      db.prepare<[number], { seq: number | null }>('SELECT MIN(seq) AS seq FROM audit_log WHERE at >= ?').get(before)?.seq ?? null;
    const lastOld = db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM audit_log').get()?.seq ?? null;
    if (lastOld === null) return 0;
    // A prefix of the chain: up to the record before the first one to keep, and never more than `limit`.
    const upTo = Math.min(firstKept === null ? lastOld : firstKept - 1, floor + limit);
    if (upTo <= floor) return 0;
    const last = db.prepare<[number], { hash: string }>('SELECT hash FROM audit_log WHERE seq = ?').get(upTo);
    if (!last) return 0;
    const count = db.prepare<[number], { n: number }>('SELECT COUNT(*) AS n FROM audit_log WHERE seq <= ?').get(upTo)?.n ?? 0;
    db.prepare(
      `INSERT INTO audit_anchor (id, seq, hash, pruned_records, pruned_at) VALUES (1, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash,
         pruned_records = audit_anchor.pruned_records + excluded.pruned_records, pruned_at = excluded.pruned_at`,
    ).run(upTo, last.hash, count, now);
    db.prepare('DELETE FROM audit_log WHERE seq <= ?').run(upTo);
    return count;
  })();
}

/** Walks the whole chain in order (streaming, constant memory), from the anchor when the head was pruned. */
export function verifyAuditChain(db: SqliteDatabase): ChainCheck {
  const anchor = auditAnchor(db);
  let prev = anchor?.hash ?? GENESIS_HASH;
  let expectedSeq = (anchor?.seq ?? 0) + 1;
  let records = 0;
  for (const row of db.prepare<[], AuditRow>('SELECT * FROM audit_log ORDER BY seq').iterate()) {
    records++;
    const r = toRecord(row);
    if (r.seq !== expectedSeq) {
      return { ok: false, records, broken: { seq: expectedSeq, reason: `record ${expectedSeq} is missing (the next one is ${r.seq})` } };
    }
    if (r.prevHash !== prev) {
      return {
        ok: false,
        records,
        broken: {
          seq: r.seq,
          reason: `record ${r.seq} does not follow record ${r.seq - 1}: its previous-hash field does not match that record's hash`,
        },
      };
    }
    if (auditHash(prev, r.seq, r) !== r.hash) {
      return { ok: false, records, broken: { seq: r.seq, reason: `record ${r.seq} was altered: its contents do not match its hash` } };
    }
    prev = r.hash;
    expectedSeq++;
  }
  return { ok: true, records, ...(anchor ? { anchor } : {}) };
}

/** Records finished at or after `since` (ms), oldest first, streamed. */
export function* auditSince(db: SqliteDatabase, since: number): Generator<AuditRecord> {
  for (const row of db.prepare<[number], AuditRow>('SELECT * FROM audit_log WHERE at >= ? ORDER BY seq').iterate(since))
    yield toRecord(row);
}

export function auditForSession(db: SqliteDatabase, sessionId: string): AuditRecord[] {
  return db.prepare<[string], AuditRow>('SELECT * FROM audit_log WHERE session_id = ? ORDER BY seq').all(sessionId).map(toRecord);
}
