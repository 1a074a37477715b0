// ResponseStore on PostgreSQL: what sqlite-responses.ts does (responses.ts says what is kept), with the same
// redaction, encryption contexts and record on the turn's last message, through the PostgreSQL session
// store's append (its advisory lock serialises a session's turns across daemons).

import type { ChatMessage } from '../core/messages.js';
import { buildDetectors } from '../compliance/detectors.js';
import type { ContentCipher } from './crypto.js';
import { bytes, type PgDatabase, type PgQueryable } from './postgres-db.js';
import type { PgScrubber } from './postgres-scrub.js';
import type { PgSessions } from './postgres-sessions.js';
import { recordContext, recordFrom, redactSettings, type RecordJson } from './response-records.js';
import type { ResponseRecord, ResponseStore, StoredRow } from './responses.js';
import { missingKeyError, type ContentProtection } from './sessions.js';
import { messageFrom } from './session-rows.js';

interface MessageRow {
  turn: number;
  seq: number;
  role: string;
  content: Buffer | null;
  content_parts: number;
  tool_calls: Buffer | null;
  tool_call_id: string | null;
  name: Buffer | null;
  key_id: string | null;
}

const MESSAGE_COLUMNS = 'turn, seq, role, content, content_parts, tool_calls, tool_call_id, name, key_id';
const LIVE = 'EXISTS (SELECT 1 FROM sessions WHERE tenant = $1 AND id = $2 AND expires_at > $3)';

export function createPgResponses(
  db: PgDatabase,
  sessions: PgSessions,
  scrubber: PgScrubber,
  protection: ContentProtection = {},
): ResponseStore {
  const detectors = protection.detectors ?? buildDetectors();
  const cipher = protection.cipher ?? null;
  const keyring = new Map<string, ContentCipher>();
  for (const k of protection.readKeys ?? []) keyring.set(k.keyId, k);
  if (cipher) keyring.set(cipher.keyId, cipher);
  const retentionMs = protection.retentionMs ?? (() => null);

  const seal = (value: Record<string, unknown>, context: string): { value: Buffer | null; keyId: string | null } => {
    if (Object.keys(value).length === 0) return { value: null, keyId: null };
    const text = JSON.stringify(redactSettings(value, detectors));
    return cipher ? { value: cipher.encrypt(text, context), keyId: cipher.keyId } : { value: bytes(text), keyId: null };
  };
  const open = (value: Buffer | null, keyId: string | null, context: string): Record<string, unknown> => {
    if (value === null) return {};
    if (keyId === null) return JSON.parse(value.toString('utf8')) as Record<string, unknown>;
    const key = keyring.get(keyId);
    if (!key) throw missingKeyError(keyId, cipher);
    return JSON.parse(key.decrypt(value, context)) as Record<string, unknown>;
  };
  const stored = (tenant: string, sessionId: string, r: MessageRow): StoredRow => ({
    turn: r.turn,
    seq: r.seq,
    message: messageFrom(
      r.role,
      sessions.reveal(tenant, sessionId, r.content, r.key_id, r.seq, 'content'),
      r.content_parts,
      sessions.reveal(tenant, sessionId, r.tool_calls, r.key_id, r.seq, 'tool_calls'),
      r.tool_call_id,
      sessions.reveal(tenant, sessionId, r.name, r.key_id, r.seq, 'name'),
    ),
  });
  const head = async (q: PgQueryable, tenant: string, id: string, now: number) => {
    const row = (
      await q.query<{ turns: number; next_seq: number; created_at: number }>(
        'SELECT turns, next_seq, created_at FROM sessions WHERE tenant = $1 AND id = $2 AND expires_at > $3',
        [tenant, id, now],
      )
    ).rows[0];
    return row ? { turns: row.turns, nextSeq: row.next_seq, createdAt: row.created_at } : null;
  };
  const recordOf = async (q: PgQueryable, tenant: string, sessionId: string, turn: number, now: number) =>
    (
      await q.query<{ response: string | null }>(
        `SELECT response FROM messages WHERE tenant = $1 AND session_id = $2 AND turn = $4 AND ${LIVE} ORDER BY seq DESC LIMIT 1`,
        [tenant, sessionId, now, turn],
      )
    ).rows[0]?.response ?? null;
  const insertThread = (
    q: PgQueryable,
    values: [string, string, string, string | null, number | null, number, Buffer | null, string | null],
  ) =>
    q.query(
      `INSERT INTO threads (tenant, id, kind, parent_id, parent_turn, created_at, metadata, key_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
       ON CONFLICT (tenant, id) DO UPDATE SET kind = excluded.kind, parent_id = excluded.parent_id, parent_turn = excluded.parent_turn,
         created_at = excluded.created_at, metadata = excluded.metadata, key_id = excluded.key_id`,
      values,
    );

  return {
    head: (tenant, id, now) => head(db, tenant, id, now),
    async continuation(tenant, sessionId, turn, now) {
      const row = (
        await db.query<{ turns: number; next_seq: number; created_at: number; response: string | null }>(
          `SELECT s.turns, s.next_seq, s.created_at, m.response FROM sessions s JOIN messages m ON m.tenant = s.tenant AND m.session_id = s.id
           WHERE s.tenant = $1 AND s.id = $2 AND s.expires_at > $3 AND m.turn = $4 ORDER BY m.seq DESC LIMIT 1`,
          [tenant, sessionId, now, turn],
        )
      ).rows[0];
      if (!row || row.response === null) return null;
      const conversation = (JSON.parse(row.response) as RecordJson).conversation;
      return { head: { turns: row.turns, nextSeq: row.next_seq, createdAt: row.created_at }, conversation };
    },
    async get(tenant, sessionId, turn, now): Promise<ResponseRecord | null> {
      const json = await recordOf(db, tenant, sessionId, turn, now);
      if (!json) return null;
      const r = JSON.parse(json) as RecordJson;
      let settings: Record<string, unknown> = {};
      if (r.settings) {
        const row = (
          await db.query<{ created_at: number; settings: Buffer; key_id: string | null }>(
            'SELECT created_at, settings, key_id FROM response_settings WHERE tenant = $1 AND session_id = $2 AND turn = $3',
            [tenant, sessionId, turn],
          )
        ).rows[0];
        if (row) settings = open(row.settings, row.key_id, recordContext('responses', tenant, sessionId, row.created_at));
      }
      return recordFrom(sessionId, turn, r, settings);
    },
    async rows(tenant, sessionId, fromTurn, toTurn, now) {
      const rows = (
        await db.query<MessageRow>(
          `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE tenant = $1 AND session_id = $2 AND turn >= $4 AND turn <= $5 AND ${LIVE} ORDER BY turn, seq`,
          [tenant, sessionId, now, fromTurn, toTurn],
        )
      ).rows;
      return rows.map((r) => stored(tenant, sessionId, r));
    },
    async row(tenant, sessionId, seq, now) {
      const r = (
        await db.query<MessageRow>(
          `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE tenant = $1 AND session_id = $2 AND seq = $4 AND ${LIVE}`,
          [tenant, sessionId, now, seq],
        )
      ).rows[0];
      return r ? stored(tenant, sessionId, r) : null;
    },
    async commit(tenant, sessionId, profile, messages, ttlMs, now, response) {
      if (!response) return sessions.appendTurn(tenant, sessionId, profile, messages, ttlMs, now);
      const r = response.record;
      const sealed = seal(r.settings, recordContext('responses', tenant, sessionId, r.createdAt));
      const json = {
        previous: r.previousId,
        conversation: r.conversation,
        inputs: r.inputs,
        created: r.createdAt,
        model: r.model,
        status: r.status,
        usage: r.inputTokens === null && r.outputTokens === null ? null : [r.inputTokens ?? 0, r.outputTokens ?? 0],
        settings: sealed.value !== null,
      };
      const then =
        sealed.value !== null || response.branch
          ? async (client: PgQueryable, turn: number) => {
              if (sealed.value !== null)
                await client.query(
                  `INSERT INTO response_settings (tenant, session_id, turn, created_at, settings, key_id) VALUES ($1, $2, $3, $4, $5, $6)
                   ON CONFLICT (tenant, session_id, turn) DO UPDATE SET created_at = excluded.created_at, settings = excluded.settings, key_id = excluded.key_id`,
                  [tenant, sessionId, turn, r.createdAt, sealed.value, sealed.keyId],
                );
              if (response.branch) {
                const meta = seal({}, recordContext('threads', tenant, sessionId));
                const { parentId, parentTurn } = response.branch;
                await insertThread(client, [tenant, sessionId, 'branch', parentId, parentTurn, now, meta.value, meta.keyId]);
              }
            }
          : undefined;
      await sessions.append(tenant, sessionId, profile, messages, ttlMs, now, {
        record: { json, outputs: r.outputs },
        ...(then ? { then } : {}),
      });
    },
    async delete(tenant, sessionId, turn) {
      const existed = await db.tx(async (client) => {
        if (!(await recordOf(client, tenant, sessionId, turn, Number.MIN_SAFE_INTEGER))) return false;
        await client.query('DELETE FROM response_settings WHERE tenant = $1 AND session_id = $2 AND turn = $3', [tenant, sessionId, turn]);
        await client.query('DELETE FROM messages WHERE tenant = $1 AND session_id = $2 AND turn = $3', [tenant, sessionId, turn]);
        return true;
      });
      if (existed) void scrubber.request();
      return existed;
    },
    async deleteRow(tenant, sessionId, seq) {
      const existed = await db.tx(async (client) => {
        const holder = (
          await client.query<{ turn: number; response: string | null }>(
            'DELETE FROM messages WHERE tenant = $1 AND session_id = $2 AND seq = $3 RETURNING turn, response',
            [tenant, sessionId, seq],
          )
        ).rows[0];
        if (!holder) return false;
        // The response's record stays with what is left of its turn.
        if (holder.response !== null)
          await client.query(
            `UPDATE messages SET response = $1 WHERE (tenant, session_id, seq) =
               (SELECT tenant, session_id, seq FROM messages WHERE tenant = $2 AND session_id = $3 AND turn = $4 ORDER BY seq DESC LIMIT 1)`,
            [holder.response, tenant, sessionId, holder.turn],
          );
        return true;
      });
      if (existed) void scrubber.request();
      return existed;
    },
    async thread(tenant, sessionId) {
      const row = (
        await db.query<{
          kind: 'conversation' | 'branch';
          parent_id: string | null;
          parent_turn: number | null;
          created_at: number;
          metadata: Buffer | null;
          key_id: string | null;
        }>('SELECT kind, parent_id, parent_turn, created_at, metadata, key_id FROM threads WHERE tenant = $1 AND id = $2', [
          tenant,
          sessionId,
        ])
      ).rows[0];
      if (!row) return null;
      const meta = open(row.metadata, row.key_id, recordContext('threads', tenant, sessionId));
      return {
        kind: row.kind,
        createdAt: row.created_at,
        metadata: (meta.metadata ?? {}) as Record<string, string>,
        parentId: row.parent_id,
        parentTurn: row.parent_turn,
      };
    },
    async createConversation(tenant, id, profile, metadata, messages: ChatMessage[], ttlMs, now) {
      const meta = seal({ metadata }, recordContext('threads', tenant, id));
      const thread = (q: PgQueryable) => insertThread(q, [tenant, id, 'conversation', null, null, now, meta.value, meta.keyId]);
      if (messages.length > 0) {
        await sessions.append(tenant, id, profile, messages, ttlMs, now, { then: (client) => thread(client).then(() => undefined) });
        return;
      }
      const keep = retentionMs(profile);
      await db.tx(async (client) => {
        await client.query(
          `INSERT INTO sessions (tenant, id, profile, created_at, updated_at, expires_at, turns, next_seq, retain_until)
           VALUES ($1, $2, $3, $4, $4, $5, 0, 0, $6)`,
          [tenant, id, profile, now, Math.min(now + ttlMs, now + (keep ?? Infinity)), keep === null ? null : now + keep],
        );
        await thread(client);
      });
    },
    async setMetadata(tenant, id, metadata, now) {
      return db.tx(async (client) => {
        const h = await head(client, tenant, id, now);
        if (!h) return false;
        const thread = (
          await client.query<{ kind: string; parent_id: string | null; parent_turn: number | null; created_at: number }>(
            'SELECT kind, parent_id, parent_turn, created_at FROM threads WHERE tenant = $1 AND id = $2',
            [tenant, id],
          )
        ).rows[0];
        const meta = seal({ metadata }, recordContext('threads', tenant, id));
        await insertThread(client, [
          tenant,
          id,
          thread?.kind ?? 'conversation',
          thread?.parent_id ?? null,
          thread?.parent_turn ?? null,
          thread?.created_at ?? h.createdAt,
          meta.value,
          meta.keyId,
        ]);
        return true;
      });
    },
  };
}
