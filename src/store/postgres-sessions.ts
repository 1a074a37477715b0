// SessionStore on PostgreSQL. A turn is one round trip in the common case (cs_llm_append_turn in
// postgres-schema.ts: an advisory lock on the session's key serialises the turns of one session however many
// daemons write it, then the bump and the inserts), shared with the turns of other requests made meanwhile
// (postgres-batch.ts: cs_llm_append_turns, and one query for the windows they load); an encrypted turn needs
// its seqs before it encrypts, so it reserves them and inserts in a second statement of the same transaction.
// Redaction and encryption are the SQLite store's (the same contexts, so rows copied by `cs-llm store migrate`
// open here). No decrypted-window cache: another daemon may change a session between two turns of this one.

import type pg from 'pg';
import type { ChatMessage } from '../core/messages.js';
import { buildDetectors } from '../compliance/detectors.js';
import { redactMessage } from '../compliance/redact.js';
import type { ContentCipher } from './crypto.js';
import { bytes, REQUEST_QUERY_MS, type PgDatabase, type PgQueryable } from './postgres-db.js';
import type { PgScrubber } from './postgres-scrub.js';
import { plainTurns, type PreparedMessage, type Row } from './postgres-batch.js';
import { InvalidCursorError } from './sessions.js';
import {
  contentContext,
  missingKeyError,
  type ContentProtection,
  type EncryptedField,
  type SessionStore,
  type StoredMessage,
} from './sessions.js';
import { messageFrom, toInfo, type SessionRow } from './session-rows.js';
import { decodeCursor, encodeCursor } from './session-listing.js';
import { bucketOf, EXPIRY_BUCKET_MS } from './expiry-bucket.js';

/** What a Responses API turn stores with its messages (postgres-responses.ts). */
export interface PgTurnExtra {
  /** The response's record (JSON object without `first` and `out`), put on the turn's last message. */
  record?: { json: Record<string, unknown>; outputs: number };
  /** Runs in the same transaction after the messages are in, with the turn's number. */
  then?: (client: pg.PoolClient, turn: number) => Promise<void>;
}

export type PgSessions = SessionStore & {
  append(
    tenant: string,
    id: string,
    profile: string,
    messages: ChatMessage[],
    ttlMs: number,
    now: number,
    extra?: PgTurnExtra,
  ): Promise<void>;
  encryptWith(next: ContentCipher): Promise<void>;
  /** A stored value's text: as it is, or decrypted with its key, bound to its row. */
  reveal(tenant: string, id: string, value: Buffer | null, keyId: string | null, seq: number, field: EncryptedField): string | null;
};

const MESSAGE_COLUMNS = 'turn, role, content, content_parts, tool_calls, tool_call_id, name, seq, key_id, created_at';

import { APPEND_SQL } from './postgres-batch.js';

/** Deletes the sessions (and, by trigger, their Responses rows); returns how many were there. */
async function removeSessions(q: PgQueryable, refs: Array<{ tenant: string; id: string }>): Promise<number> {
  if (refs.length === 0) return 0;
  const tenants = refs.map((r) => r.tenant);
  const ids = refs.map((r) => r.id);
  await q.query('DELETE FROM messages m USING unnest($1::text[], $2::text[]) AS r(t, i) WHERE m.tenant = r.t AND m.session_id = r.i', [
    tenants,
    ids,
  ]);
  const gone = await q.query('DELETE FROM sessions s USING unnest($1::text[], $2::text[]) AS r(t, i) WHERE s.tenant = r.t AND s.id = r.i', [
    tenants,
    ids,
  ]);
  return gone.rowCount ?? 0;
}

export async function createPgSessions(db: PgDatabase, scrubber: PgScrubber, protection: ContentProtection = {}): Promise<PgSessions> {
  const detectors = protection.detectors ?? buildDetectors();
  const attachments = protection.attachments ?? 'drop';
  let cipher = protection.cipher ?? null;
  const keyring = new Map<string, ContentCipher>();
  for (const k of protection.readKeys ?? []) keyring.set(k.keyId, k);
  if (cipher) keyring.set(cipher.keyId, cipher);
  const retentionMs = protection.retentionMs ?? (() => null);
  // No retention anywhere: the start-up pass over every session has nothing to cap (ContentProtection).
  const anyRetention = protection.retentionMs !== undefined && protection.anyRetention !== false;
  const recordKey = (id: string) =>
    db.query('INSERT INTO content_keys (id, first_used_at, retired_at) VALUES ($1, $2, NULL) ON CONFLICT (id) DO NOTHING', [
      id,
      Date.now(),
    ]);
  if (cipher) await recordKey(cipher.keyId);

  const reveal: PgSessions['reveal'] = (tenant, id, value, keyId, seq, field) => {
    if (value === null) return null;
    if (keyId === null) return value.toString('utf8');
    const key = keyring.get(keyId);
    if (!key) throw missingKeyError(keyId, cipher);
    return key.decrypt(value, contentContext(tenant, id, seq, field));
  };
  const messageOf = (tenant: string, id: string, r: Row): ChatMessage =>
    messageFrom(
      r[1],
      reveal(tenant, id, r[2], r[8], r[7], 'content'),
      r[3],
      reveal(tenant, id, r[4], r[8], r[7], 'tool_calls'),
      r[5],
      reveal(tenant, id, r[6], r[8], r[7], 'name'),
    );

  /** The messages redacted, as the texts of their columns. */
  const prepare = (messages: ChatMessage[]): PreparedMessage[] =>
    messages.map((original) => {
      const m = redactMessage(original, detectors, { attachments });
      const parts = Array.isArray(m.content);
      return {
        role: m.role,
        content: parts ? JSON.stringify(m.content) : typeof m.content === 'string' ? m.content : null,
        parts: parts ? 1 : 0,
        toolCalls: m.tool_calls && m.tool_calls.length > 0 ? JSON.stringify(m.tool_calls) : null,
        toolCallId: m.tool_call_id ?? null,
        name: m.name ?? null,
      };
    });

  const { appendPlain, loadWindows } = plainTurns(db);

  const append: PgSessions['append'] = async (tenant, id, profile, messages, ttlMs, now, extra = {}) => {
    const keep = retentionMs(profile);
    const rows = prepare(messages);
    const n = rows.length;
    const head = [tenant, id, profile, now, now + ttlMs, keep, n];
    const sealer = cipher;
    if (!sealer && !extra.then) {
      await appendPlain({
        head: [tenant, id, profile, now, now + ttlMs, keep, n],
        rows,
        record: extra.record ? JSON.stringify(extra.record.json) : null,
        outputs: extra.record?.outputs ?? 0,
      });
      return;
    }
    await db.tx(async (client) => {
      const reserved = await client.query<{ o_turn: number; o_first: number }>(APPEND_SQL, [
        ...head,
        null,
        null,
        null,
        null,
        null,
        null,
        null,
        0,
      ]);
      const { o_turn: turn, o_first: first } = reserved.rows[0]!;
      const seal = (text: string | null, seq: number, field: EncryptedField): Buffer | null =>
        text === null ? null : sealer ? sealer.encrypt(text, contentContext(tenant, id, seq, field)) : bytes(text);
      const record = extra.record ? JSON.stringify({ ...extra.record.json, first, out: first + n - extra.record.outputs }) : null;
      if (n > 0) {
        await client.query(
          `INSERT INTO messages (tenant, session_id, seq, turn, role, content, content_parts, tool_calls, tool_call_id, name, created_at, key_id, response)
           SELECT $1, $2, $3::integer + u.o - 1, $4, u.r, u.c, u.pa, u.tc, u.tci, u.nm, $5, $6,
                  CASE WHEN u.o = $7 THEN $8 END
           FROM unnest($9::text[], $10::bytea[], $11::smallint[], $12::bytea[], $13::text[], $14::bytea[]) WITH ORDINALITY AS u(r, c, pa, tc, tci, nm, o)`,
          [
            tenant,
            id,
            first,
            turn,
            now,
            sealer?.keyId ?? null,
            n,
            record,
            rows.map((r) => r.role),
            rows.map((r, i) => seal(r.content, first + i, 'content')),
            rows.map((r) => r.parts),
            rows.map((r, i) => seal(r.toolCalls, first + i, 'tool_calls')),
            rows.map((r) => r.toolCallId),
            rows.map((r, i) => seal(r.name, first + i, 'name')),
          ],
        );
      }
      await extra.then?.(client, turn);
    });
  };

  const deleteAndScrub = async (refs: Array<{ tenant: string; id: string }>): Promise<number> => {
    const n = await db.tx((client) => removeSessions(client, refs));
    if (n > 0) void scrubber.request();
    return n;
  };
  const refs = async (sql: string, values: unknown[]) => (await db.query<{ tenant: string; id: string }>(sql, values)).rows;
  /**
   * Deletes up to `batch` sessions matching `condition` ($1 its value) in one statement that checks the
   * condition again on each row it deletes: a session another daemon renewed a moment ago stays.
   */
  const deleteWhere = async (condition: string, value: number, batch: number, tenant: string | null): Promise<number> => {
    const ofTenant = tenant === null ? '' : ' AND tenant = $3';
    const n = (
      await db.query<{ n: number }>(
        `WITH gone AS (
           DELETE FROM sessions s WHERE (s.tenant, s.id) IN (SELECT tenant, id FROM sessions WHERE ${condition}${ofTenant} LIMIT $2)
             AND s.${condition} RETURNING s.tenant, s.id),
         messages_gone AS (DELETE FROM messages m USING gone WHERE m.tenant = gone.tenant AND m.session_id = gone.id)
         SELECT COUNT(*)::integer AS n FROM gone`,
        tenant === null ? [value, batch] : [value, batch, tenant],
      )
    ).rows[0]!.n;
    if (n > 0) void scrubber.request();
    return n;
  };
  const allMessages = async (tenant: string, id: string) =>
    (
      await db.query({
        text: `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE tenant = $1 AND session_id = $2 ORDER BY turn, seq`,
        values: [tenant, id],
        rowMode: 'array',
      })
    ).rows as Row[];

  return {
    append,
    reveal,
    async encryptWith(next) {
      await recordKey(next.keyId);
      keyring.set(next.keyId, next);
      cipher = next;
    },
    async loadWindow(tenant, id, turns, now) {
      if (turns <= 0) return [];
      const rows = await loadWindows([tenant, id, turns, now]);
      const out: StoredMessage[] = new Array<StoredMessage>(rows.length);
      for (let i = 0; i < rows.length; i++) out[i] = { turn: rows[i]![0], message: messageOf(tenant, id, rows[i]!) };
      return out;
    },
    appendTurn: (tenant, id, profile, messages, ttlMs, now) => append(tenant, id, profile, messages, ttlMs, now),
    async get(tenant, id, now) {
      const session = (
        await db.query<SessionRow>('SELECT * FROM sessions WHERE tenant = $1 AND id = $2 AND expires_at > $3', [tenant, id, now])
      ).rows[0];
      if (!session) return null;
      return { ...toInfo(session), messages: (await allMessages(tenant, id)).map((r) => messageOf(tenant, id, r)) };
    },
    async export(tenant, id) {
      const session = (await db.query<SessionRow>('SELECT * FROM sessions WHERE tenant = $1 AND id = $2', [tenant, id])).rows[0];
      if (!session) return null;
      const messages = (await allMessages(tenant, id)).map((r) => ({ ...messageOf(tenant, id, r), turn: r[0], createdAt: r[9] }));
      return { ...toInfo(session), messages };
    },
    list: (options) => listSessions(db, options),
    async liveSessions(tenant, id, now, atMost) {
      // As on SQLite (session-listing.ts): the buckets after now's from the index, now's own row by row; the
      // first expiry from the first bucket holding a live session.
      const row = (
        await db.query<{ later: number; current: number; next: number | null; present: boolean }>(
          `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM sessions WHERE tenant = $1 AND expiry_bucket > $5 LIMIT $4) l)::integer AS later,
                  (SELECT COUNT(*) FROM (SELECT 1 FROM sessions WHERE tenant = $1 AND expiry_bucket = $5 AND expires_at > $3 LIMIT $4) c)::integer AS current,
                  (SELECT MIN(expires_at) FROM sessions WHERE tenant = $1 AND expires_at > $3 AND expiry_bucket =
                     (SELECT expiry_bucket FROM sessions WHERE tenant = $1 AND expiry_bucket >= $5 AND expires_at > $3
                      ORDER BY expiry_bucket LIMIT 1)) AS next,
                  EXISTS (SELECT 1 FROM sessions WHERE tenant = $1 AND id = $2 AND expires_at > $3) AS present`,
          [tenant, id, now, atMost, bucketOf(now)],
        )
      ).rows[0]!;
      return { live: Math.min(atMost, row.later + row.current), nextExpiry: row.next, exists: row.present };
    },
    delete: async (tenant, id) => (await deleteAndScrub([{ tenant, id }])) > 0,
    async deleteTenant(tenant) {
      let total = 0;
      for (;;) {
        const n = await deleteAndScrub(await refs('SELECT tenant, id FROM sessions WHERE tenant = $1 LIMIT 200', [tenant]));
        total += n;
        if (n < 200) return total;
      }
    },
    // Through the expiry indexes: an expired session's bucket is at most now's (expiry-bucket.ts).
    sweepExpired: (now, batch = 500, tenant = null) =>
      deleteWhere(`expiry_bucket <= $1::bigint / ${EXPIRY_BUCKET_MS} AND expires_at <= $1`, now, batch, tenant),
    async pruneOlderThan(before, tenant = null) {
      let total = 0;
      for (;;) {
        const n = await deleteWhere('updated_at < $1', before, 200, tenant);
        total += n;
        if (n < 200) return total;
      }
    },
    scrubbed: (waitMs) => (scrubber.pending ? scrubber.request(waitMs) : Promise.resolve(true)),
    async capRetention(after, batch = 500) {
      if (!anyRetention) return { next: null, capped: 0 };
      const rows = (
        await db.query<{ tenant: string; id: string; profile: string; created_at: number; retain_until: number | null }>(
          'SELECT tenant, id, profile, created_at, retain_until FROM sessions WHERE (tenant, id) > ($1, $2) ORDER BY tenant, id LIMIT $3',
          [after?.tenant ?? '', after?.id ?? '', batch],
        )
      ).rows;
      const caps: Array<{ tenant: string; id: string; until: number }> = [];
      for (const r of rows) {
        const keep = retentionMs(r.profile);
        const until = keep === null ? null : r.created_at + keep;
        if (until !== null && (r.retain_until === null || r.retain_until > until)) caps.push({ tenant: r.tenant, id: r.id, until });
      }
      if (caps.length > 0) {
        await db.query(
          // LEAST: a cap only shrinks, whatever a turn on another daemon set meanwhile.
          `UPDATE sessions s SET retain_until = LEAST(COALESCE(s.retain_until, c.u), c.u), expires_at = LEAST(s.expires_at, c.u)
           FROM unnest($1::text[], $2::text[], $3::bigint[]) AS c(t, i, u) WHERE s.tenant = c.t AND s.id = c.i`,
          [caps.map((c) => c.tenant), caps.map((c) => c.id), caps.map((c) => c.until)],
        );
      }
      const last = rows[rows.length - 1];
      return { next: rows.length === batch && last ? { tenant: last.tenant, id: last.id } : null, capped: caps.length };
    },
  };
}

// Keyset-paged listing, newest expiry first, with session-listing.ts's cursor (one format for both stores): the
// index ranges of the live buckets up to the cursor's, the exact expiry sorting the rows of the buckets a page reaches.

async function listSessions(db: PgDatabase, { tenant, now, limit, cursor }: Parameters<SessionStore['list']>[0]) {
  let sql: string;
  let values: unknown[];
  const from = bucketOf(now);
  if (cursor) {
    const after = decodeCursor(cursor);
    if (!after || (tenant !== null && after.tenant !== tenant))
      throw new InvalidCursorError(`cursor "${cursor}" is not one this server gave out for this listing`);
    const to = bucketOf(after.expiresAt);
    if (tenant === null) {
      sql = `SELECT * FROM sessions WHERE expiry_bucket BETWEEN $1 AND $2 AND expires_at > $3 AND (expires_at, tenant, id) < ($4, $5, $6)
             ORDER BY expiry_bucket DESC, expires_at DESC, tenant DESC, id DESC LIMIT $7`;
      values = [from, to, now, after.expiresAt, after.tenant, after.id, limit + 1];
    } else {
      sql = `SELECT * FROM sessions WHERE tenant = $1 AND expiry_bucket BETWEEN $2 AND $3 AND expires_at > $4 AND (expires_at, id) < ($5, $6)
             ORDER BY expiry_bucket DESC, expires_at DESC, id DESC LIMIT $7`;
      values = [tenant, from, to, now, after.expiresAt, after.id, limit + 1];
    }
  } else if (tenant === null) {
    sql = `SELECT * FROM sessions WHERE expiry_bucket >= $1 AND expires_at > $2
           ORDER BY expiry_bucket DESC, expires_at DESC, tenant DESC, id DESC LIMIT $3`;
    values = [from, now, limit + 1];
  } else {
    sql = `SELECT * FROM sessions WHERE tenant = $1 AND expiry_bucket >= $2 AND expires_at > $3
           ORDER BY expiry_bucket DESC, expires_at DESC, id DESC LIMIT $4`;
    values = [tenant, from, now, limit + 1];
  }
  const rows = (await db.query<SessionRow>(sql, values)).rows;
  const more = rows.length > limit;
  const page = more ? rows.slice(0, limit) : rows;
  return { sessions: page.map(toInfo), nextCursor: more ? encodeCursor(page[page.length - 1]!) : null };
}
