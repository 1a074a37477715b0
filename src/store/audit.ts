/*
 * The audit log: one record per API request, never message contents. Append-only (triggers refuse UPDATE, and
 * DELETE beyond the retention anchor) and chained under a key kept outside the database (audit-chain.ts), so
 * that changing, removing or reordering a record breaks the chain at that record.
 */

import type { AuditKeyring } from './audit-key.js';
import { anchorRow, auditMs, chainReads, keyChain, keyedAuditHash, writeAnchor, type AuditEntry, type AuditRecord } from './audit-chain.js';
import { DEFAULT_TENANT } from '../core/tenant.js';
import type { SqliteDatabase } from './database.js';

export { auditAnchor, GENESIS_HASH, type AuditAnchor, type AuditEntry, type AuditRecord } from './audit-chain.js';

export interface AuditRow {
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
  tenant: string | null;
}

export function auditRowToRecord(r: AuditRow): AuditRecord {
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
    tenant: r.tenant,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

export interface AuditWriter {
  /**
   * Queues a record; it is written with others in one transaction within flushMs (or at maxBatch). An
   * optional record (a request that came while the queue was full) is dropped when it is full: returns
   * whether the record was queued.
   */
  append(entry: AuditEntry, optional?: boolean): boolean;
  /** Writes what is queued now. */
  flush(): void;
  /** Flushes and stops the timer. */
  close(): void;
  /** Records queued and not yet written. */
  readonly queued: number;
  /** queued >= maxQueue: records of requests already being served are still queued, nothing else is. */
  readonly full: boolean;
}

export interface AuditWriterOptions {
  flushMs?: number;
  /** Records per transaction. */
  maxBatch?: number;
  /** The bound on records waiting to be written (while writes fail, they wait). */
  maxQueue?: number;
  onError?: (err: unknown) => void;
  /** The queue reached maxQueue. */
  onFull?: (queued: number) => void;
  /** The queue fell below maxQueue again. */
  onDrained?: () => void;
}

/** Columns of an audit_log row, and rows per multi-row INSERT (16 x 17 parameters, under SQLite's limit of 32,766). */
const AUDIT_COLUMNS = 17;
const INSERT_GROUP = 16;

/**
 * Writes audit records off the request path: the observer only pushes to an array; a timer writes the queue
 * in transactions of maxBatch, reading the last hash inside each so that two writers (a daemon restarted over
 * an old one's tail) still extend one chain. On first use it signs the chain's start with the key (keyChain).
 */
export function createAuditWriter(db: SqliteDatabase, ring: AuditKeyring, options: AuditWriterOptions = {}): AuditWriter {
  const flushMs = options.flushMs ?? 100;
  const maxBatch = options.maxBatch ?? 512;
  const maxQueue = options.maxQueue ?? Number.POSITIVE_INFINITY;
  const key = ring.current.key;
  db.transaction(() => keyChain(db, ring)).immediate();
  const columns = `INSERT INTO audit_log (seq, at, key_id, method, route, session_id, upstream, status, outcome, error_code,
       prompt_tokens, completion_tokens, latency_ms, upstream_ms, prev_hash, hash, tenant) VALUES `;
  const row = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
  const insert = db.prepare(columns + row);
  // Whole groups of rows in one statement: a statement's run() is a call into SQLite's VM with its own setup,
  // and the writer stores a row per request (#21).
  const insertGroup = db.prepare(columns + Array<string>(INSERT_GROUP).fill(row).join(', '));
  const reads = chainReads(db);
  const params: unknown[] = [];
  const write = db.transaction((entries: AuditEntry[]) => {
    // Another process may have started a new key (cs-llm audit new-key): never chain under the wrong one.
    const chainKey = reads.keyId();
    if (chainKey !== ring.current.id) {
      throw new Error(`the audit chain is now under key ${chainKey} (cs-llm audit new-key?), not ${ring.current.id}: restart the daemon`);
    }
    const tail = reads.tail();
    let seq = tail.seq;
    let prev = tail.hash;
    params.length = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      seq++;
      const hash = keyedAuditHash(key, prev, seq, e);
      params.push(
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
        auditMs(e.latencyMs),
        auditMs(e.upstreamMs),
        prev,
        hash,
        e.tenant ?? null,
      );
      prev = hash;
      if (params.length === INSERT_GROUP * AUDIT_COLUMNS) {
        insertGroup.run(params);
        params.length = 0;
      }
    }
    for (let at = 0; at < params.length; at += AUDIT_COLUMNS) insert.run(params.slice(at, at + AUDIT_COLUMNS));
    params.length = 0;
  });
  let queue: AuditEntry[] = [];
  let timer: NodeJS.Timeout | null = null;
  let immediate = false;
  // After a failed write, retries wait for the timer: a locked database is not asked again on every request.
  let failing = false;
  let closed = false;
  let full = false;

  const schedule = (ms: number) => {
    if (timer || closed) return;
    timer = setTimeout(flush, ms);
    timer.unref();
  };
  const flushSoon = () => {
    if (immediate || closed) return;
    immediate = true;
    setImmediate(() => {
      immediate = false;
      flush();
    });
  };
  const flush = (): void => {
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    // One batch per turn of the event loop: a long queue (after writes failed) drains without a long pause.
    if (queue.length === 0 || !db.open) return;
    const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
    try {
      write.immediate(batch);
    } catch (err) {
      // Kept for the next flush (the database may be busy for a moment); never thrown at a request.
      failing = true;
      options.onError?.(err);
      schedule(flushMs);
      return;
    }
    failing = false;
    queue = batch === queue ? [] : queue.slice(batch.length);
    if (full && queue.length < maxQueue) {
      full = false;
      options.onDrained?.();
    }
    if (queue.length > 0) {
      if (closed) flush();
      else flushSoon();
    }
  };
  return {
    get queued() {
      return queue.length;
    },
    get full() {
      return full;
    },
    append(entry, optional = false) {
      if (closed || (optional && queue.length >= maxQueue)) return false;
      queue.push(entry);
      if (!full && queue.length >= maxQueue) {
        full = true;
        options.onFull?.(queue.length);
      }
      if (queue.length >= maxBatch && !failing) flushSoon();
      else schedule(flushMs);
      return true;
    },
    flush,
    close() {
      closed = true;
      flush();
    },
  };
}

/**
 * Retention: deletes the oldest records, those before the first record at or after `before` (ms), at most
 * `limit` of them, in one transaction. The last one deleted becomes the anchor (its seq and hash, signed with
 * the audit key), so the rest of the chain still verifies and new records extend it; the triggers refuse any
 * other delete. Returns how many were deleted (call again while it returns `limit`).
 */
export function pruneAuditBefore(db: SqliteDatabase, ring: AuditKeyring, before: number, now: number, limit = 5000): number {
  return db.transaction(() => {
    keyChain(db, ring, now);
    const anchor = anchorRow(db);
    const floor = anchor?.seq ?? 0;
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
    writeAnchor(db, ring, { seq: upTo, hash: last.hash, prunedRecords: (anchor?.pruned_records ?? 0) + count, prunedAt: now });
    db.prepare('DELETE FROM audit_log WHERE seq <= ?').run(upTo);
    return count;
  })();
}

/** Records finished at or after `since` (ms), oldest first, streamed; one tenant's when `tenant` is set. */
export function* auditSince(db: SqliteDatabase, since: number, tenant: string | null = null): Generator<AuditRecord> {
  const rows =
    tenant === null
      ? db.prepare<[number], AuditRow>('SELECT * FROM audit_log WHERE at >= ? ORDER BY seq').iterate(since)
      : db.prepare<[number, string], AuditRow>('SELECT * FROM audit_log WHERE at >= ? AND tenant = ? ORDER BY seq').iterate(since, tenant);
  for (const row of rows) yield auditRowToRecord(row);
}

/**
 * The records that name a session of `tenant`. Records without a tenant that name a session are from before
 * tenants (every request that names a session has passed its key check, which sets the tenant): they belong
 * to the default tenant, the only one there was.
 */
export function auditForSession(db: SqliteDatabase, tenant: string, sessionId: string): AuditRecord[] {
  const sql =
    tenant === DEFAULT_TENANT
      ? 'SELECT * FROM audit_log WHERE session_id = ? AND (tenant = ? OR tenant IS NULL) ORDER BY seq'
      : 'SELECT * FROM audit_log WHERE session_id = ? AND tenant = ? ORDER BY seq';
  return db.prepare<[string, string], AuditRow>(sql).all(sessionId, tenant).map(auditRowToRecord);
}
