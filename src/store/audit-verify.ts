/*
 * `cs-llm audit verify`: walks the whole chain (streaming, constant memory) from the retention anchor, checking
 * each record's link to the one before and its hash: HMAC-SHA-256 under the key of its part of the chain, or
 * plain SHA-256 for the records written before schema 4. Names the first record that does not verify.
 */

import type { AuditKeyring } from './audit-key.js';
import {
  anchorRow,
  chainSegments,
  checkAnchorTag,
  checkSegmentTag,
  GENESIS_HASH,
  keyedAuditHash,
  unkeyedAuditHash,
  type AnchorRow,
  type AuditAnchor,
  type AuditRecord,
  type ChainSegment,
} from './audit-chain.js';
import { auditRowToRecord, type AuditRow } from './audit.js';
import type { SqliteDatabase } from './database.js';

export interface ChainCheck {
  ok: boolean;
  /** Records read. */
  records: number;
  /**
   * The first record that does not fit the chain, and why. keyMissing: the record may be intact, but it is
   * chained under that key and the key file does not hold it, so it cannot be checked.
   */
  broken?: { seq: number; reason: string; keyMissing?: string };
  /** Where the chain starts when its head was pruned (retention). */
  anchor?: AuditAnchor;
  /** The keys of the chain, from the record each starts at; keyId null: not keyed yet (no key was used on it). */
  keys: Array<{ fromSeq: number; keyId: string | null }>;
  /** Records verified with plain SHA-256: written before the chain was keyed (cs-llm before schema 4). */
  unkeyedRecords: number;
}

/** ring: the audit key file's keys (null when there is none): records under keys it lacks cannot be verified. */
export function verifyAuditChain(db: SqliteDatabase, ring: AuditKeyring | null): ChainCheck {
  const check = chainChecker(anchorRow(db), chainSegments(db), ring);
  if (check.start) return check.start;
  for (const row of db.prepare<[], AuditRow>('SELECT * FROM audit_log ORDER BY seq').iterate()) {
    const broken = check.row(row);
    if (broken) return broken;
  }
  return check.end();
}

/**
 * The walk of verifyAuditChain over any source of records (the PostgreSQL store reads them in pages): `start`
 * is the answer when the chain's start is already wrong, `row` takes the records in seq order and answers
 * when one does not fit, `end` checks what follows the last one.
 */
export function chainChecker(
  anchorSigned: AnchorRow | undefined,
  segments: ChainSegment[],
  ring: AuditKeyring | null,
): { start: ChainCheck | null; row(row: AuditRow): ChainCheck | null; end(): ChainCheck } {
  const anchor: AuditAnchor | undefined = anchorSigned && {
    seq: anchorSigned.seq,
    hash: anchorSigned.hash,
    prunedRecords: anchorSigned.pruned_records,
    prunedAt: anchorSigned.pruned_at,
    keyId: anchorSigned.key_id,
  };
  const keys = segments.map((s) => ({ fromSeq: s.fromSeq, keyId: s.keyId }));
  let records = 0;
  let unkeyedRecords = 0;
  const result = (broken?: ChainCheck['broken']): ChainCheck => ({
    ok: broken === undefined,
    records,
    ...(broken ? { broken } : {}),
    ...(anchor ? { anchor } : {}),
    keys,
    unkeyedRecords,
  });
  const firstSeq = (anchor?.seq ?? 0) + 1;
  const fail = (check: ChainCheck) => ({ start: check, row: () => check, end: () => check });
  if (segments.length === 0) {
    return fail(
      result({
        seq: firstSeq,
        reason:
          'the record of where the keyed chain starts (table audit_chain) was removed, so no record can be checked against the audit key',
      }),
    );
  }
  const keyed = segments.some((s) => s.tag !== null);
  const missing = (seq: number, keyId: string) => ({
    seq,
    keyMissing: keyId,
    reason: `record ${seq} and later ones are chained under audit key ${keyId}, which ${ring ? `the key file ${ring.file} does not hold` : 'is not available (no audit key file)'}`,
  });

  // Once the chain is keyed, the anchor is signed: moving it forward to delete records needs the key.
  if (anchorSigned && keyed) {
    const key = anchorSigned.key_id ? ring?.byId(anchorSigned.key_id) : undefined;
    if (anchorSigned.tag === null)
      return fail(
        result({
          seq: firstSeq,
          reason: `the retention anchor (records up to ${anchorSigned.seq} pruned) is not signed with the audit key: it was set outside cs-llm`,
        }),
      );
    if (!key) return fail(result(missing(firstSeq, anchorSigned.key_id ?? '?')));
    if (!checkAnchorTag(anchorSigned, key))
      return fail(
        result({
          seq: firstSeq,
          reason: `the retention anchor (records up to ${anchorSigned.seq} pruned) was altered: its signature does not match`,
        }),
      );
  }

  let prev = anchor?.hash ?? GENESIS_HASH;
  let expectedSeq = firstSeq;
  // The segment in force for the record being read: the last one starting at or before it (-1: before all).
  let at = -1;
  let key: Buffer | null = null;
  const enter = (s: ChainSegment, seq: number): ChainCheck['broken'] | Buffer | null => {
    // The migration's row before any key: what an older daemon wrote after it is plain SHA-256.
    if (s.tag === null && s === segments[0]) return null;
    if (s.tag === null || s.keyId === null) {
      return {
        seq,
        reason: `record ${seq} comes after the keyed chain begins (record ${s.fromSeq}), but that start is not signed with an audit key: it was changed outside cs-llm`,
      };
    }
    const k = ring?.byId(s.keyId);
    if (!k) return missing(seq, s.keyId);
    if (!checkSegmentTag(s, k)) {
      return {
        seq,
        reason: `the start of the chain under audit key ${s.keyId} (record ${s.fromSeq}) was altered: its signature does not match`,
      };
    }
    return k;
  };
  const row = (row: AuditRow): ChainCheck | null => {
    records++;
    const r: AuditRecord = auditRowToRecord(row);
    if (r.seq !== expectedSeq) {
      return result({ seq: expectedSeq, reason: `record ${expectedSeq} is missing (the next one is ${r.seq})` });
    }
    if (at + 1 < segments.length && segments[at + 1]!.fromSeq <= r.seq) {
      // Parts wholly pruned away are skipped: only the one this record is in matters.
      while (at + 2 < segments.length && segments[at + 2]!.fromSeq <= r.seq) at++;
      at++;
      const entered = enter(segments[at]!, r.seq);
      if (entered !== null && !Buffer.isBuffer(entered)) return result(entered);
      key = entered;
      if (r.seq === segments[at]!.fromSeq && r.prevHash !== segments[at]!.prevHash) {
        return result({
          seq: r.seq,
          reason: `record ${r.seq} does not follow record ${r.seq - 1}: its previous-hash field does not match where the chain under key ${segments[at]!.keyId} starts`,
        });
      }
    }
    if (r.prevHash !== prev) {
      return result({
        seq: r.seq,
        reason: `record ${r.seq} does not follow record ${r.seq - 1}: its previous-hash field does not match that record's hash`,
      });
    }
    const expected = key ? keyedAuditHash(key, prev, r.seq, r) : unkeyedAuditHash(prev, r.seq, r);
    if (expected !== r.hash) {
      return result({ seq: r.seq, reason: `record ${r.seq} was altered: its contents do not match its hash` });
    }
    // Plain SHA-256 records come from before the key: one written after the key was made was rewritten (with
    // the start of the keyed chain moved past it), unless the log comes from another installation.
    if (!key && ring?.createdAt != null && r.at > ring.createdAt) {
      return result({
        seq: r.seq,
        reason: `record ${r.seq} is chained with plain SHA-256 but was written at ${new Date(r.at).toISOString()}, after the audit key was made (${new Date(ring.createdAt).toISOString()}): it was rewritten outside cs-llm, or this log belongs to another installation's key file`,
      });
    }
    if (!key) unkeyedRecords++;
    prev = r.hash;
    expectedSeq++;
    return null;
  };
  const end = (): ChainCheck => {
    // A key's start that no record uses yet (just after audit new-key) is signed too, and binds the last record:
    // records removed from the end before it are found.
    for (const s of segments.slice(at + 1)) {
      if (s.tag === null) continue;
      const k = s.keyId ? ring?.byId(s.keyId) : undefined;
      if (k && !checkSegmentTag(s, k)) {
        return result({
          seq: s.fromSeq,
          reason: `the start of the chain under audit key ${s.keyId} (record ${s.fromSeq}) was altered: its signature does not match`,
        });
      }
      if (s.fromSeq > expectedSeq) {
        return result({
          seq: expectedSeq,
          reason: `record ${expectedSeq} is missing (the chain under key ${s.keyId} starts at ${s.fromSeq})`,
        });
      }
      if (s.fromSeq === expectedSeq && s.prevHash !== prev) {
        return result({
          seq: s.fromSeq - 1,
          reason: `record ${s.fromSeq - 1} is not the one the chain under key ${s.keyId} was started after: it was altered or removed`,
        });
      }
    }
    return result();
  };
  return { start: null, row, end };
}
