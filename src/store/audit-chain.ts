/*
 * The audit log's chain: what a record's hash covers, and which key signs which part of the log.
 *
 * Each record's hash is HMAC-SHA-256, under the audit key (audit-key.ts, a file outside the database), of the
 * previous record's hash and a canonical encoding of its own fields; changing, removing or reordering a record
 * breaks the chain there, and someone who can write the database but not read the key cannot sign a rewritten
 * chain again. Databases from before schema 4 hold records chained with plain SHA-256: they stay as they are
 * and verify as before, and the keyed chain goes on from the last one's hash, so they are bound to it too.
 *
 * Table audit_chain says where each key starts: (from_seq, prev_hash, key_id, tag), tag being an HMAC of
 * from_seq and prev_hash under that key, so the start cannot be moved or re-pointed without the key. The
 * schema-4 migration writes the first row unsigned (it has no key); the first process that uses the key on
 * the database signs it, and the retention anchor with it (or, when an older daemon wrote records after the
 * migration, starts a signed row after them: the records before the first signed row are plain SHA-256).
 */

import { createHash, createHmac } from 'node:crypto';
import { ConfigError, EnvironmentError } from '../core/errors.js';
import { createAuditKeyring, readAuditKeyring, type AuditKeyring } from './audit-key.js';
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
  /**
   * The tenant the request acted for (its key's); null when refused before the key was known, and on every
   * record written before tenants (schema 6). Optional so that entries built before it still type-check.
   */
  tenant?: string | null;
}

export interface AuditRecord extends AuditEntry {
  seq: number;
  prevHash: string;
  hash: string;
}

export const GENESIS_HASH = '0'.repeat(64);

/** Milliseconds kept to the microsecond, so the value hashed is the value stored. */
export const auditMs = (n: number) => Math.round(n * 1000) / 1000;

/**
 * The fields in a fixed order, as JSON: the canonical encoding that is hashed. Fields added later (the
 * tenant, issue 15) go at the end and are left out while null, so the records written before them keep
 * their hash.
 */
export function canonicalAuditRecord(seq: number, e: AuditEntry): string {
  const fields: unknown[] = [
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
  ];
  if (e.tenant !== null && e.tenant !== undefined) fields.push(e.tenant);
  return JSON.stringify(fields);
}

/** How records were chained before schema 4: sha256(prev_hash + "\n" + canonical record). */
export function unkeyedAuditHash(prevHash: string, seq: number, entry: AuditEntry): string {
  return createHash('sha256').update(prevHash).update('\n').update(canonicalAuditRecord(seq, entry)).digest('hex');
}

/** HMAC-SHA-256 under the audit key of the same input. */
export function keyedAuditHash(key: Buffer, prevHash: string, seq: number, entry: AuditEntry): string {
  // One update of the joined string: each update() is a call into C++, and the daemon hashes every request's
  // record (#21).
  return createHmac('sha256', key)
    .update(`${prevHash}\n${canonicalAuditRecord(seq, entry)}`)
    .digest('hex');
}

export const segmentTag = (key: Buffer, fromSeq: number, prevHash: string) =>
  createHmac('sha256', key).update(`cs-llm audit chain\n${fromSeq}\n${prevHash}`).digest('hex');

export const anchorTag = (key: Buffer, a: { seq: number; hash: string; prunedRecords: number; prunedAt: number }) =>
  createHmac('sha256', key).update(`cs-llm audit anchor\n${a.seq}\n${a.hash}\n${a.prunedRecords}\n${a.prunedAt}`).digest('hex');

/** Where one key's part of the chain starts. keyId and tag are null until the key is first used (schema 4). */
export interface ChainSegment {
  fromSeq: number;
  prevHash: string;
  keyId: string | null;
  tag: string | null;
  createdAt: number;
}

export interface AuditAnchor {
  /** The last pruned record: the chain goes on from its hash. */
  seq: number;
  hash: string;
  /** Records pruned in all, and when the last prune ran (ms). */
  prunedRecords: number;
  prunedAt: number;
  /** The audit key that signed the anchor; null for an anchor from before schema 4 not yet signed. */
  keyId: string | null;
}

export interface AnchorRow {
  seq: number;
  hash: string;
  pruned_records: number;
  pruned_at: number;
  key_id: string | null;
  tag: string | null;
}

export function anchorRow(db: SqliteDatabase): AnchorRow | undefined {
  return db.prepare<[], AnchorRow>('SELECT * FROM audit_anchor WHERE id = 1').get();
}

export function auditAnchor(db: SqliteDatabase): AuditAnchor | undefined {
  const row = anchorRow(db);
  return row ? { seq: row.seq, hash: row.hash, prunedRecords: row.pruned_records, prunedAt: row.pruned_at, keyId: row.key_id } : undefined;
}

/** The anchor is signed: moving it (to delete records) needs the key. */
export function checkAnchorTag(row: AnchorRow, key: Buffer): boolean {
  return anchorTag(key, { seq: row.seq, hash: row.hash, prunedRecords: row.pruned_records, prunedAt: row.pruned_at }) === row.tag;
}

/** Writes the anchor (retention) signed with the key in force. Call inside a transaction. */
export function writeAnchor(
  db: SqliteDatabase,
  ring: AuditKeyring,
  a: { seq: number; hash: string; prunedRecords: number; prunedAt: number },
) {
  db.prepare(
    `INSERT INTO audit_anchor (id, seq, hash, pruned_records, pruned_at, key_id, tag) VALUES (1, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, pruned_records = excluded.pruned_records,
       pruned_at = excluded.pruned_at, key_id = excluded.key_id, tag = excluded.tag`,
  ).run(a.seq, a.hash, a.prunedRecords, a.prunedAt, ring.current.id, anchorTag(ring.current.key, a));
}

interface SegmentRow {
  from_seq: number;
  prev_hash: string;
  key_id: string | null;
  tag: string | null;
  created_at: number;
}

/**
 * The chain's segments in order, one per starting record (a later row for the same record, written by
 * `audit new-key` before any record used the earlier one, replaces it).
 */
export function chainSegments(db: SqliteDatabase): ChainSegment[] {
  const out: ChainSegment[] = [];
  for (const r of db.prepare<[], SegmentRow>('SELECT * FROM audit_chain ORDER BY from_seq, id').all()) {
    const s = { fromSeq: r.from_seq, prevHash: r.prev_hash, keyId: r.key_id, tag: r.tag, createdAt: r.created_at };
    if (out.length > 0 && out[out.length - 1]!.fromSeq === s.fromSeq) out[out.length - 1] = s;
    else out.push(s);
  }
  return out;
}

export function checkSegmentTag(s: ChainSegment, key: Buffer): boolean {
  return s.tag !== null && segmentTag(key, s.fromSeq, s.prevHash) === s.tag;
}

function lastSegment(db: SqliteDatabase): (SegmentRow & { id: number }) | undefined {
  return db.prepare<[], SegmentRow & { id: number }>('SELECT * FROM audit_chain ORDER BY id DESC LIMIT 1').get();
}

/** The last record's seq and hash (or the anchor's, or genesis): what the next record chains from. */
export function chainTail(db: SqliteDatabase): { seq: number; hash: string } {
  return chainReads(db).tail();
}

/**
 * chainKeyId and chainTail with their statements prepared once, for the audit writer, which asks both in
 * every flush (preparing them each time was a tenth of a flush's cost).
 */
export function chainReads(db: SqliteDatabase): { keyId: () => string | null; tail: () => { seq: number; hash: string } } {
  const lastKey = db.prepare<[], { key_id: string | null }>('SELECT key_id FROM audit_chain ORDER BY id DESC LIMIT 1');
  const lastRecord = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1');
  const anchor = db.prepare<[], { seq: number; hash: string }>('SELECT seq, hash FROM audit_anchor WHERE id = 1');
  return {
    keyId: () => lastKey.get()?.key_id ?? null,
    tail: () => lastRecord.get() ?? anchor.get() ?? { seq: 0, hash: GENESIS_HASH },
  };
}

function insertSegment(db: SqliteDatabase, ring: AuditKeyring, now: number): number {
  const tail = chainTail(db);
  const fromSeq = tail.seq + 1;
  db.prepare('INSERT INTO audit_chain (from_seq, prev_hash, key_id, tag, created_at) VALUES (?, ?, ?, ?, ?)').run(
    fromSeq,
    tail.hash,
    ring.current.id,
    segmentTag(ring.current.key, fromSeq, tail.hash),
    now,
  );
  return fromSeq;
}

function tamperedError(db: SqliteDatabase, what: string): EnvironmentError {
  return new EnvironmentError(`the audit log in ${db.name} ${what}, which cs-llm never writes: it was changed outside cs-llm`, {
    next: 'Keep a copy of the file as evidence and run cs-llm audit verify. cs-llm audit new-key starts a new keyed chain from the last record.',
  });
}

function keyError(db: SqliteDatabase, keyId: string, fromSeq: number, ring: AuditKeyring | null, file: string): ConfigError {
  return new ConfigError(
    `the audit log in ${db.name} is chained under audit key ${keyId} (from record ${fromSeq}), but ${
      ring ? `the key file ${file} holds ${ring.keys.map((k) => k.id).join(', ')}` : `the key file ${file} does not exist`
    }`,
    {
      next: `Restore ${file} from your backup (cs-llm audit key-id --key-file F prints the keys a file holds). If key ${keyId} is lost for good, cs-llm audit new-key starts a new chain under a new key (the records under ${keyId} can then no longer be verified), or set store.audit to false to run without the audit log.`,
    },
  );
}

/**
 * Makes the chain ready for new records under the key in force, inside the caller's transaction: on first use
 * it signs the start the schema-4 migration left (and the retention anchor); when the key in force changed
 * and the file still holds the chain's key, the new key's part starts at the next record. Refuses when the
 * file lacks the chain's key.
 */
export function keyChain(db: SqliteDatabase, ring: AuditKeyring, now = Date.now()): void {
  const last = lastSegment(db);
  if (!last) throw tamperedError(db, 'has no record of where its keyed chain starts (table audit_chain is empty)');
  if (last.key_id === ring.current.id) return;
  if (last.tag === null) {
    // Only the migration's row is ever unsigned, and only until the first use of a key.
    const count = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM audit_chain').get()!.n;
    const anchor = anchorRow(db);
    if (count > 1 || anchor?.tag) throw tamperedError(db, 'has an unsigned start of its keyed chain after a signed one');
    const since = db.prepare<[number], { n: number }>('SELECT EXISTS (SELECT 1 FROM audit_log WHERE seq >= ?) AS n').get(last.from_seq)!.n;
    if (since === 1) {
      // A daemon of the previous version went on writing (plain SHA-256) after this one migrated the file:
      // those records stay before the key, which starts after the last record.
      insertSegment(db, ring, now);
    } else {
      db.prepare('UPDATE audit_chain SET key_id = ?, tag = ? WHERE id = ?').run(
        ring.current.id,
        segmentTag(ring.current.key, last.from_seq, last.prev_hash),
        last.id,
      );
    }
    if (anchor)
      writeAnchor(db, ring, { seq: anchor.seq, hash: anchor.hash, prunedRecords: anchor.pruned_records, prunedAt: anchor.pruned_at });
    return;
  }
  if (last.key_id !== null && ring.byId(last.key_id)) {
    insertSegment(db, ring, now);
    return;
  }
  throw keyError(db, last.key_id ?? '?', last.from_seq, ring, ring.file);
}

/** The key id new records must be chained under (the last segment's); null while the chain is not keyed yet. */
export function chainKeyId(db: SqliteDatabase): string | null {
  return lastSegment(db)?.key_id ?? null;
}

/**
 * The audit key file for this database: read, or created on first use, i.e. when it does not exist and the
 * log was never keyed. Refuses when the log is chained under a key the file does not hold.
 */
export function openAuditKeyring(db: SqliteDatabase, file: string): AuditKeyring {
  const last = lastSegment(db);
  let ring = readAuditKeyring(file);
  if (!ring && last?.key_id) throw keyError(db, last.key_id, last.from_seq, null, file);
  if (!ring) {
    try {
      ring = createAuditKeyring(file);
    } catch (err) {
      // Another process (a CLI command next to the daemon) created it a moment ago.
      ring = readAuditKeyring(file);
      if (!ring) throw err;
    }
  }
  if (last?.key_id && !ring.byId(last.key_id)) throw keyError(db, last.key_id, last.from_seq, ring, file);
  return ring;
}

/**
 * `cs-llm audit new-key`: the key now in force (already first in the file) chains the records from the next
 * one on; the anchor is signed again with it when its key is no longer in the file. Returns where it starts
 * and the key the chain used before (null when it was not keyed).
 */
export function startAuditKey(db: SqliteDatabase, ring: AuditKeyring, now = Date.now()): { fromSeq: number; previousKeyId: string | null } {
  return db.transaction(() => {
    const last = lastSegment(db);
    const previousKeyId = last?.key_id ?? null;
    let anchor = anchorRow(db);
    const segmentCount = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM audit_chain').get()!.n;
    let fromSeq: number;
    // A log never keyed: the migration's start is signed. Anything else (a key in force, lost, or a start
    // found unsigned after a signed one) gets a new start after the last record.
    if (last && last.tag === null && segmentCount === 1 && !anchor?.tag) {
      keyChain(db, ring, now);
      fromSeq = last.from_seq;
      anchor = anchorRow(db);
    } else fromSeq = insertSegment(db, ring, now);
    // An anchor signed with a key the file no longer holds could not be checked any more: the operator who
    // starts the new key vouches for it. One signed with a key still held stays as it is (verify checks it).
    if (anchor && (anchor.key_id === null || !ring.byId(anchor.key_id))) {
      writeAnchor(db, ring, { seq: anchor.seq, hash: anchor.hash, prunedRecords: anchor.pruned_records, prunedAt: anchor.pruned_at });
    }
    return { fromSeq, previousKeyId };
  })();
}
