// The audit log on PostgreSQL: the chain of audit-chain.ts (the same hashes, segments, anchor and checks),
// written by any number of daemons as one chain. Each write transaction takes an advisory lock first, then
// reads the tail and extends it, so two writers never chain from the same record (a writer that knows the tail
// sends its batch chained from it, and the server checks it under the lock: cs_llm_audit_append). The writer queues records
// off the request path like the SQLite one; its writes are asynchronous, one at a time.

import { ConfigError, EnvironmentError } from '../core/errors.js';
import { DEFAULT_TENANT } from '../core/tenant.js';
import {
  anchorTag,
  auditMs,
  GENESIS_HASH,
  keyedAuditHash,
  segmentTag,
  type AnchorRow,
  type AuditAnchor,
  type AuditEntry,
  type AuditRecord,
  type ChainSegment,
} from './audit-chain.js';
import { createAuditKeyring, readAuditKeyring, type AuditKeyring } from './audit-key.js';
import { chainChecker } from './audit-verify.js';
import { auditRowToRecord, type AuditRow, type AuditWriter, type AuditWriterOptions } from './audit.js';
import type { AuditLog } from './interface.js';
import { redactUrl } from './location.js';
import { AUDIT_LOCK, LOCK_SPACE, type PgDatabase, type PgQueryable } from './postgres-db.js';

interface SegmentRow {
  id: number;
  from_seq: number;
  prev_hash: string;
  key_id: string | null;
  tag: string | null;
  created_at: number;
}

const lastSegment = async (q: PgQueryable) => (await q.query<SegmentRow>('SELECT * FROM audit_chain ORDER BY id DESC LIMIT 1')).rows[0];
const anchorOf = async (q: PgQueryable) => (await q.query<AnchorRow>('SELECT * FROM audit_anchor WHERE id = 1')).rows[0];
const lockChain = (q: PgQueryable) => q.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_SPACE, AUDIT_LOCK]);

interface Tail {
  seq: number;
  hash: string;
}

async function tail(q: PgQueryable): Promise<Tail> {
  return (
    (await q.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1')).rows[0] ??
    (await q.query<{ seq: number; hash: string }>('SELECT seq, hash FROM audit_anchor WHERE id = 1')).rows[0] ?? {
      seq: 0,
      hash: GENESIS_HASH,
    }
  );
}

async function segments(q: PgQueryable): Promise<ChainSegment[]> {
  const out: ChainSegment[] = [];
  for (const r of (await q.query<SegmentRow>('SELECT * FROM audit_chain ORDER BY from_seq, id')).rows) {
    const s = { fromSeq: r.from_seq, prevHash: r.prev_hash, keyId: r.key_id, tag: r.tag, createdAt: r.created_at };
    if (out.length > 0 && out[out.length - 1]!.fromSeq === s.fromSeq) out[out.length - 1] = s;
    else out.push(s);
  }
  return out;
}

async function writeAnchor(q: PgQueryable, ring: AuditKeyring, a: { seq: number; hash: string; prunedRecords: number; prunedAt: number }) {
  await q.query(
    `INSERT INTO audit_anchor (id, seq, hash, pruned_records, pruned_at, key_id, tag) VALUES (1, $1, $2, $3, $4, $5, $6)
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, pruned_records = excluded.pruned_records,
       pruned_at = excluded.pruned_at, key_id = excluded.key_id, tag = excluded.tag`,
    [a.seq, a.hash, a.prunedRecords, a.prunedAt, ring.current.id, anchorTag(ring.current.key, a)],
  );
}

async function insertSegment(q: PgQueryable, ring: AuditKeyring, now: number): Promise<number> {
  const t = await tail(q);
  const fromSeq = t.seq + 1;
  await q.query('INSERT INTO audit_chain (from_seq, prev_hash, key_id, tag, created_at) VALUES ($1, $2, $3, $4, $5)', [
    fromSeq,
    t.hash,
    ring.current.id,
    segmentTag(ring.current.key, fromSeq, t.hash),
    now,
  ]);
  return fromSeq;
}

export function createPgAudit(db: PgDatabase): AuditLog & { drain(): Promise<void> } {
  const where = `the PostgreSQL store at ${redactUrl(db.url)}`;
  const tampered = (what: string) =>
    new EnvironmentError(`the audit log in ${where} ${what}, which cs-llm never writes: it was changed outside cs-llm`, {
      next: 'Keep a dump of the database as evidence and run cs-llm audit verify. cs-llm audit new-key starts a new keyed chain from the last record.',
    });
  const keyError = (keyId: string, fromSeq: number, ring: AuditKeyring | null, file: string) =>
    new ConfigError(
      `the audit log in ${where} is chained under audit key ${keyId} (from record ${fromSeq}), but ${
        ring ? `the key file ${file} holds ${ring.keys.map((k) => k.id).join(', ')}` : `the key file ${file} does not exist`
      }`,
      {
        next: `Give every daemon that shares this database the same audit key file (a copy of ${file} from the first one), or restore it from your backup.`,
      },
    );

  /** keyChain of audit-chain.ts, inside the caller's transaction (which holds the audit lock). */
  const keyChain = async (q: PgQueryable, ring: AuditKeyring, now = Date.now()): Promise<void> => {
    const last = await lastSegment(q);
    if (!last) throw tampered('has no record of where its keyed chain starts (table audit_chain is empty)');
    if (last.key_id === ring.current.id) return;
    if (last.tag === null) {
      const count = (await q.query<{ n: number }>('SELECT COUNT(*)::integer AS n FROM audit_chain')).rows[0]!.n;
      const anchor = await anchorOf(q);
      if (count > 1 || anchor?.tag) throw tampered('has an unsigned start of its keyed chain after a signed one');
      const since = (await q.query('SELECT 1 FROM audit_log WHERE seq >= $1 LIMIT 1', [last.from_seq])).rowCount ?? 0;
      if (since > 0) await insertSegment(q, ring, now);
      else
        await q.query('UPDATE audit_chain SET key_id = $1, tag = $2 WHERE id = $3', [
          ring.current.id,
          segmentTag(ring.current.key, last.from_seq, last.prev_hash),
          last.id,
        ]);
      if (anchor)
        await writeAnchor(q, ring, {
          seq: anchor.seq,
          hash: anchor.hash,
          prunedRecords: anchor.pruned_records,
          prunedAt: anchor.pruned_at,
        });
      return;
    }
    if (last.key_id !== null && ring.byId(last.key_id)) {
      await insertSegment(q, ring, now);
      return;
    }
    throw keyError(last.key_id ?? '?', last.from_seq, ring, ring.file);
  };

  const writers = new Set<Promise<void>>();

  const writer = (ring: AuditKeyring, options: AuditWriterOptions = {}): AuditWriter => {
    const flushMs = options.flushMs ?? 100;
    const maxBatch = options.maxBatch ?? 512;
    const maxQueue = options.maxQueue ?? Number.POSITIVE_INFINITY;
    const key = ring.current.key;
    let keyed = false;
    const moved = (chainKey: string | null) =>
      new Error(`the audit chain is now under key ${chainKey} (cs-llm audit new-key?), not ${ring.current.id}: restart the daemon`);
    /** The batch's rows chained from `after`, as columns, and the new tail. */
    const chained = (entries: AuditEntry[], after: Tail) => {
      let seq = after.seq;
      let prev = after.hash;
      const rows = entries.map((e) => {
        seq++;
        const hash = keyedAuditHash(key, prev, seq, e);
        const row = [seq, e.at, e.keyId, e.method, e.route, e.sessionId, e.upstream, e.status, e.outcome, e.errorCode];
        const more = [e.promptTokens, e.completionTokens, auditMs(e.latencyMs), auditMs(e.upstreamMs), prev, hash, e.tenant ?? null];
        prev = hash;
        return [...row, ...more];
      });
      return { columns: Array.from({ length: 17 }, (_, i) => rows.map((r) => r[i])), tail: { seq, hash: prev } };
    };
    /** The first batch, and after a failure: the chain keyed and its tail read under the lock, in one transaction. */
    const writeLocked = (entries: AuditEntry[]) =>
      db.tx(async (client) => {
        await lockChain(client);
        if (!keyed) await keyChain(client, ring);
        const chainKey = (await lastSegment(client))?.key_id ?? null;
        if (chainKey !== ring.current.id) throw moved(chainKey);
        const batch = chained(entries, await tail(client));
        await client.query(
          `INSERT INTO audit_log (seq, at, key_id, method, route, session_id, upstream, status, outcome, error_code, prompt_tokens,
             completion_tokens, latency_ms, upstream_ms, prev_hash, hash, tenant)
           SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::integer[],
             $9::text[], $10::text[], $11::integer[], $12::integer[], $13::float8[], $14::float8[], $15::text[], $16::text[], $17::text[])`,
          batch.columns,
        );
        keyed = true;
        return batch.tail;
      });
    // The tail this writer last wrote (null: not known, after a failure whose commit may or may not have
    // happened). Chained from it, a batch is one round trip (cs_llm_audit_append in postgres-schema.ts)
    // instead of six; another daemon's records in between send it round again from the tail they left.
    let known: Tail | null = null;
    const write = async (entries: AuditEntry[]) => {
      try {
        for (let tries = 0; known && tries < 3; tries++) {
          const batch = chained(entries, known);
          const answer = (
            await db.query<{ o_status: string; o_seq: number; o_hash: string | null }>({
              name: 'cs_llm_audit_append',
              text: `SELECT o_status, o_seq, o_hash FROM cs_llm_audit_append($1, $2, $3, ${Array.from({ length: 17 }, (_, i) => `$${i + 4}`).join(', ')})`,
              values: [ring.current.id, known.seq, known.hash, ...batch.columns],
            })
          ).rows[0]!;
          if (answer.o_status === 'ok') {
            known = batch.tail;
            return;
          }
          if (answer.o_status === 'key') throw moved(answer.o_hash);
          known = { seq: answer.o_seq, hash: answer.o_hash! };
        }
        known = null;
        known = await writeLocked(entries);
      } catch (err) {
        known = null;
        throw err;
      }
    };
    let queue: AuditEntry[] = [];
    let timer: NodeJS.Timeout | null = null;
    let writing: Promise<void> | null = null;
    let failing = false;
    let closed = false;
    let full = false;
    const schedule = (ms: number) => {
      if (timer || (closed && ms > 0)) return;
      timer = setTimeout(flush, ms);
      timer.unref();
    };
    const flush = (): void => {
      if (timer) {
        clearTimeout(timer);
        timer = null;
      }
      if (writing || queue.length === 0) return;
      const batch = queue.slice(0, maxBatch);
      const done = write(batch).then(
        () => {
          failing = false;
          queue = queue.slice(batch.length);
          if (full && queue.length < maxQueue) {
            full = false;
            options.onDrained?.();
          }
        },
        (err: unknown) => {
          // Kept for the next flush (PostgreSQL may be away for a moment); never thrown at a request.
          failing = true;
          options.onError?.(err);
        },
      );
      const current: Promise<void> = done.finally(() => {
        writers.delete(current);
        writing = null;
        if (queue.length === 0) return;
        // The next batch starts before this one settles, so drain() (the store closing) waits for it too.
        if (!failing) flush();
        else if (!closed) schedule(flushMs);
      });
      writing = current;
      writers.add(current);
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
        if (queue.length >= maxBatch && !failing) schedule(0);
        else schedule(flushMs);
        return true;
      },
      flush,
      close() {
        // The last records are written before the store closes (it waits for drain()); one try, no retries.
        closed = true;
        failing = false;
        flush();
      },
    };
  };

  const pageOf = (sql: string) =>
    async function* (values: unknown[]): AsyncGenerator<AuditRow> {
      let after = -1;
      for (;;) {
        const rows = (await db.query<AuditRow>(sql, [after, ...values])).rows;
        yield* rows;
        if (rows.length < 1000) return;
        after = rows[rows.length - 1]!.seq;
      }
    };
  const allRows = pageOf('SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT 1000');
  const sinceRows = pageOf('SELECT * FROM audit_log WHERE seq > $1 AND at >= $2 ORDER BY seq LIMIT 1000');
  const sinceTenantRows = pageOf('SELECT * FROM audit_log WHERE seq > $1 AND at >= $2 AND tenant = $3 ORDER BY seq LIMIT 1000');

  return {
    async drain() {
      while (writers.size > 0) await Promise.all([...writers]);
    },
    async keyring(file) {
      const last = await lastSegment(db);
      let ring = readAuditKeyring(file);
      if (!ring && last?.key_id) throw keyError(last.key_id, last.from_seq, null, file);
      if (!ring) {
        try {
          ring = createAuditKeyring(file);
        } catch (err) {
          ring = readAuditKeyring(file);
          if (!ring) throw err;
        }
      }
      if (last?.key_id && !ring.byId(last.key_id)) throw keyError(last.key_id, last.from_seq, ring, file);
      return ring;
    },
    startKey: (ring) =>
      db.tx(async (client) => {
        const now = Date.now();
        await lockChain(client);
        const last = await lastSegment(client);
        const previousKeyId = last?.key_id ?? null;
        let anchor = await anchorOf(client);
        const count = (await client.query<{ n: number }>('SELECT COUNT(*)::integer AS n FROM audit_chain')).rows[0]!.n;
        let fromSeq: number;
        if (last && last.tag === null && count === 1 && !anchor?.tag) {
          await keyChain(client, ring, now);
          fromSeq = last.from_seq;
          anchor = await anchorOf(client);
        } else fromSeq = await insertSegment(client, ring, now);
        if (anchor && (anchor.key_id === null || !ring.byId(anchor.key_id))) {
          await writeAnchor(client, ring, {
            seq: anchor.seq,
            hash: anchor.hash,
            prunedRecords: anchor.pruned_records,
            prunedAt: anchor.pruned_at,
          });
        }
        return { fromSeq, previousKeyId };
      }),
    writer,
    async verify(ring) {
      const check = chainChecker(await anchorOf(db), await segments(db), ring);
      if (check.start) return check.start;
      for await (const row of allRows([])) {
        const broken = check.row(row);
        if (broken) return broken;
      }
      return check.end();
    },
    async *since(since, tenant) {
      const rows = tenant ? sinceTenantRows([since, tenant]) : sinceRows([since]);
      for await (const row of rows) yield auditRowToRecord(row);
    },
    async forSession(tenant, sessionId) {
      const sql =
        tenant === DEFAULT_TENANT
          ? 'SELECT * FROM audit_log WHERE session_id = $1 AND (tenant = $2 OR tenant IS NULL) ORDER BY seq'
          : 'SELECT * FROM audit_log WHERE session_id = $1 AND tenant = $2 ORDER BY seq';
      return (await db.query<AuditRow>(sql, [sessionId, tenant])).rows.map(auditRowToRecord);
    },
    prune: (ring, before, now, limit = 5000) =>
      db.tx(async (client) => {
        await lockChain(client);
        await keyChain(client, ring, now);
        const anchor = await anchorOf(client);
        const floor = anchor?.seq ?? 0;
        const firstKept = (await client.query<{ seq: number | null }>('SELECT MIN(seq) AS seq FROM audit_log WHERE at >= $1', [before]))
          .rows[0]?.seq;
        const lastOld = (await client.query<{ seq: number | null }>('SELECT MAX(seq) AS seq FROM audit_log')).rows[0]?.seq ?? null;
        if (lastOld === null) return 0;
        const upTo = Math.min(firstKept == null ? lastOld : firstKept - 1, floor + limit);
        if (upTo <= floor) return 0;
        const last = (await client.query<{ hash: string }>('SELECT hash FROM audit_log WHERE seq = $1', [upTo])).rows[0];
        if (!last) return 0;
        const count = (await client.query<{ n: number }>('SELECT COUNT(*)::integer AS n FROM audit_log WHERE seq <= $1', [upTo])).rows[0]!
          .n;
        await writeAnchor(client, ring, {
          seq: upTo,
          hash: last.hash,
          prunedRecords: (anchor?.pruned_records ?? 0) + count,
          prunedAt: now,
        });
        await client.query('DELETE FROM audit_log WHERE seq <= $1', [upTo]);
        return count;
      }),
    async anchor(): Promise<AuditAnchor | undefined> {
      const row = await anchorOf(db);
      return row
        ? { seq: row.seq, hash: row.hash, prunedRecords: row.pruned_records, prunedAt: row.pruned_at, keyId: row.key_id }
        : undefined;
    },
  };
}

export type { AuditRecord };
