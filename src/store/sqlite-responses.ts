// ResponseStore on SQLite (responses.ts says what it keeps). The turn's messages go through the session
// store's own append, so they are redacted and encrypted as every message is; a response's settings and a
// thread's metadata are redacted here the same way (every string) and encrypted with the same key, bound to
// their row. A response's record rides on the last message of its turn (messages.response): writing it
// changes a page the append has just written, so a Responses turn writes no more pages than a session turn,
// and it goes wherever its messages go. Settings that differ from the defaults (rare) and threads are rows
// of their own, keyed by (tenant, session); a session's deletion (erasure, sweep, prune, an expired id
// reused) takes them with it (the trigger of migration 7), text blanked before the rows go.

import type { ChatMessage } from '../core/messages.js';
import { buildDetectors } from '../compliance/detectors.js';
import type { ContentCipher } from './crypto.js';
import type { SqliteDatabase, Synchronous } from './database.js';
import type { Scrubber } from './retention.js';
import type { ResponseRecord, ResponseStore, SessionHead, StoredRow, ThreadRecord } from './responses.js';
import { contentContext, missingKeyError, type ContentProtection, type EncryptedField } from './sessions.js';
import { messageFrom } from './session-rows.js';
import type { SqliteSessions } from './sqlite-sessions.js';
import { recordContext, recordFrom, redactSettings, type RecordJson } from './response-records.js';

export type SqliteResponses = Synchronous<ResponseStore>;

interface ThreadRow {
  kind: 'conversation' | 'branch';
  parent_id: string | null;
  parent_turn: number | null;
  created_at: number;
  metadata: string | Uint8Array | null;
  key_id: string | null;
}

type MessageRow = {
  turn: number;
  seq: number;
  role: string;
  content: string | Uint8Array | null;
  content_parts: number;
  tool_calls: string | Uint8Array | null;
  tool_call_id: string | null;
  name: string | Uint8Array | null;
  key_id: string | null;
};

const MESSAGE_COLUMNS = 'turn, seq, role, content, content_parts, tool_calls, tool_call_id, name, key_id';

export function createSqliteResponses(
  db: SqliteDatabase,
  sessions: SqliteSessions,
  scrubber: Scrubber,
  protection: ContentProtection = {},
): SqliteResponses {
  const detectors = protection.detectors ?? buildDetectors();
  const cipher = protection.cipher ?? null;
  const keyring = new Map<string, ContentCipher>();
  for (const k of protection.readKeys ?? []) keyring.set(k.keyId, k);
  if (cipher) keyring.set(cipher.keyId, cipher);
  const retentionMs = protection.retentionMs ?? (() => null);

  const seal = (value: Record<string, unknown>, context: string): { value: string | Buffer | null; keyId: string | null } => {
    // Settings that are all defaults (most requests) are not stored at all: nothing to redact or encrypt.
    if (Object.keys(value).length === 0) return { value: null, keyId: null };
    const text = JSON.stringify(redactSettings(value, detectors));
    return cipher ? { value: cipher.encrypt(text, context), keyId: cipher.keyId } : { value: text, keyId: null };
  };
  const open = (value: string | Uint8Array | null, keyId: string | null, context: string): Record<string, unknown> => {
    if (value === null) return {};
    if (keyId === null)
      return JSON.parse(typeof value === 'string' ? value : Buffer.from(value).toString('utf8')) as Record<string, unknown>;
    const key = keyring.get(keyId);
    if (!key) throw missingKeyError(keyId, cipher);
    return JSON.parse(key.decrypt(value as Uint8Array, context)) as Record<string, unknown>;
  };
  const reveal = (
    tenant: string,
    sessionId: string,
    row: MessageRow,
    value: string | Uint8Array | null,
    field: EncryptedField,
  ): string | null => {
    if (value === null || row.key_id === null || typeof value === 'string') return value as string | null;
    const key = keyring.get(row.key_id);
    if (!key) throw missingKeyError(row.key_id, cipher);
    return key.decrypt(value, contentContext(tenant, sessionId, row.seq, field));
  };
  const stored = (tenant: string, sessionId: string, row: MessageRow): StoredRow => ({
    turn: row.turn,
    seq: row.seq,
    message: messageFrom(
      row.role,
      reveal(tenant, sessionId, row, row.content, 'content'),
      row.content_parts,
      reveal(tenant, sessionId, row, row.tool_calls, 'tool_calls'),
      row.tool_call_id,
      reveal(tenant, sessionId, row, row.name, 'name'),
    ),
  });

  const selectHead = db.prepare<[string, string, number], { turns: number; next_seq: number; created_at: number }>(
    'SELECT turns, next_seq, created_at FROM sessions WHERE tenant = ? AND id = ? AND expires_at > ?',
  );
  const selectRecord = db.prepare<[string, string, number, string, string, number], { response: string | null }>(
    `SELECT response FROM messages WHERE tenant = ? AND session_id = ? AND turn = ?
       AND EXISTS (SELECT 1 FROM sessions WHERE tenant = ? AND id = ? AND expires_at > ?) ORDER BY seq DESC LIMIT 1`,
  );
  // The record is on the turn's last message: one row read, from the end of the turn's index range.
  const selectContinuation = db.prepare<
    [string, string, number, number],
    { turns: number; next_seq: number; created_at: number; response: string | null }
  >(
    `SELECT s.turns, s.next_seq, s.created_at, m.response FROM sessions s JOIN messages m ON m.tenant = s.tenant AND m.session_id = s.id
     WHERE s.tenant = ? AND s.id = ? AND s.expires_at > ? AND m.turn = ? ORDER BY m.seq DESC LIMIT 1`,
  );
  const selectSettings = db.prepare<[string, string, number], { created_at: number; settings: string | Uint8Array; key_id: string | null }>(
    'SELECT created_at, settings, key_id FROM response_settings WHERE tenant = ? AND session_id = ? AND turn = ?',
  );
  const selectRows = db.prepare<[string, string, number, number], MessageRow>(
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE tenant = ? AND session_id = ? AND turn >= ? AND turn <= ? ORDER BY turn, seq`,
  );
  const selectRow = db.prepare<[string, string, number], MessageRow>(
    `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE tenant = ? AND session_id = ? AND seq = ?`,
  );
  const insertSettings = db.prepare(
    'INSERT OR REPLACE INTO response_settings (tenant, session_id, turn, created_at, settings, key_id) VALUES (?, ?, ?, ?, ?, ?)',
  );
  const selectThread = db.prepare<[string, string], ThreadRow>(
    'SELECT kind, parent_id, parent_turn, created_at, metadata, key_id FROM threads WHERE tenant = ? AND id = ?',
  );
  const insertThread = db.prepare(
    'INSERT OR REPLACE INTO threads (tenant, id, kind, parent_id, parent_turn, created_at, metadata, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertSession = db.prepare(
    'INSERT INTO sessions (tenant, id, profile, created_at, updated_at, expires_at, turns, next_seq, retain_until) VALUES (?, ?, ?, ?, ?, ?, 0, 0, ?)',
  );
  // Text blanked in place before a row goes (secure_delete then zeroes the old bytes; a deleted row's
  // neighbours moving within a page could otherwise leave a copy behind).
  const blankTurn = db.prepare<[string, string, number]>(
    'UPDATE messages SET content = NULL, tool_calls = NULL, name = NULL WHERE tenant = ? AND session_id = ? AND turn = ?',
  );
  const deleteTurn = db.prepare<[string, string, number]>('DELETE FROM messages WHERE tenant = ? AND session_id = ? AND turn = ?');
  const blankRow = db.prepare<[string, string, number]>(
    'UPDATE messages SET content = NULL, tool_calls = NULL, name = NULL WHERE tenant = ? AND session_id = ? AND seq = ?',
  );
  const deleteRow = db.prepare<[string, string, number]>('DELETE FROM messages WHERE tenant = ? AND session_id = ? AND seq = ?');
  const blankSettings = db.prepare<[string, string, number]>(
    'UPDATE response_settings SET settings = NULL WHERE tenant = ? AND session_id = ? AND turn = ?',
  );
  const deleteSettings = db.prepare<[string, string, number]>(
    'DELETE FROM response_settings WHERE tenant = ? AND session_id = ? AND turn = ?',
  );
  const selectHolder = db.prepare<[string, string, number], { turn: number; response: string | null }>(
    'SELECT turn, response FROM messages WHERE tenant = ? AND session_id = ? AND seq = ?',
  );
  const moveRecord = db.prepare<[string, string, string, number]>(
    'UPDATE messages SET response = ? WHERE rowid = (SELECT rowid FROM messages WHERE tenant = ? AND session_id = ? AND turn = ? ORDER BY seq DESC LIMIT 1)',
  );

  const toRecord = (tenant: string, sessionId: string, turn: number, json: string): ResponseRecord => {
    const r = JSON.parse(json) as RecordJson;
    let settings: Record<string, unknown> = {};
    if (r.settings) {
      const row = selectSettings.get(tenant, sessionId, turn);
      if (row) settings = open(row.settings, row.key_id, recordContext('responses', tenant, sessionId, row.created_at));
    }
    return recordFrom(sessionId, turn, r, settings);
  };

  // The record goes in with the turn's last message (no statement, no page of its own); the rare settings row
  // and a branch's thread row after the messages, in the same transaction.
  const commit = (...args: Parameters<SqliteResponses['commit']>): void => {
    const [tenant, sessionId, profile, messages, ttlMs, now, response] = args;
    if (!response) return sessions.appendTurn(tenant, sessionId, profile, messages, ttlMs, now);
    const r = response.record;
    const sealed = seal(r.settings, recordContext('responses', tenant, sessionId, r.createdAt));
    let turn = 0;
    const json = (t: number, firstSeq: number): string => {
      turn = t;
      const record: RecordJson = {
        previous: r.previousId,
        conversation: r.conversation,
        inputs: r.inputs,
        first: firstSeq,
        out: firstSeq + messages.length - r.outputs,
        created: r.createdAt,
        model: r.model,
        status: r.status,
        usage: r.inputTokens === null && r.outputTokens === null ? null : [r.inputTokens ?? 0, r.outputTokens ?? 0],
        settings: sealed.value !== null,
      };
      return JSON.stringify(record);
    };
    const then =
      sealed.value !== null || response.branch
        ? () => {
            if (sealed.value !== null) insertSettings.run(tenant, sessionId, turn, r.createdAt, sealed.value, sealed.keyId);
            if (response.branch) {
              const meta = seal({}, recordContext('threads', tenant, sessionId));
              const { parentId, parentTurn } = response.branch;
              insertThread.run(tenant, sessionId, 'branch', parentId, parentTurn, now, meta.value, meta.keyId);
            }
          }
        : undefined;
    sessions.appendTurn(tenant, sessionId, profile, messages, ttlMs, now, { record: json, ...(then ? { then } : {}) });
  };

  const removeResponse = db.transaction((tenant: string, sessionId: string, turn: number): boolean => {
    sessions.forget(tenant, sessionId);
    if (!selectRecord.get(tenant, sessionId, turn, tenant, sessionId, Number.MIN_SAFE_INTEGER)?.response) return false;
    blankSettings.run(tenant, sessionId, turn);
    deleteSettings.run(tenant, sessionId, turn);
    blankTurn.run(tenant, sessionId, turn);
    deleteTurn.run(tenant, sessionId, turn);
    return true;
  });

  const removeRow = db.transaction((tenant: string, sessionId: string, seq: number): boolean => {
    sessions.forget(tenant, sessionId);
    const holder = selectHolder.get(tenant, sessionId, seq);
    if (!holder) return false;
    blankRow.run(tenant, sessionId, seq);
    deleteRow.run(tenant, sessionId, seq);
    // The response's record stays with what is left of its turn.
    if (holder.response !== null) moveRecord.run(holder.response, tenant, sessionId, holder.turn);
    return true;
  });

  const createConversation = db.transaction(
    (
      tenant: string,
      id: string,
      profile: string,
      metadata: Record<string, string>,
      messages: ChatMessage[],
      ttlMs: number,
      now: number,
    ) => {
      if (messages.length > 0) sessions.appendTurn(tenant, id, profile, messages, ttlMs, now);
      else {
        const keep = retentionMs(profile);
        insertSession.run(
          tenant,
          id,
          profile,
          now,
          now,
          Math.min(now + ttlMs, now + (keep ?? Infinity)),
          keep === null ? null : now + keep,
        );
      }
      const meta = seal({ metadata }, recordContext('threads', tenant, id));
      insertThread.run(tenant, id, 'conversation', null, null, now, meta.value, meta.keyId);
    },
  );

  const setMetadata = db.transaction((tenant: string, id: string, metadata: Record<string, string>, now: number): boolean => {
    const head = selectHead.get(tenant, id, now);
    if (!head) return false;
    const thread = selectThread.get(tenant, id);
    const meta = seal({ metadata }, recordContext('threads', tenant, id));
    insertThread.run(
      tenant,
      id,
      thread?.kind ?? 'conversation',
      thread?.parent_id ?? null,
      thread?.parent_turn ?? null,
      thread?.created_at ?? head.created_at,
      meta.value,
      meta.keyId,
    );
    return true;
  });

  return {
    head(tenant, sessionId, now): SessionHead | null {
      const row = selectHead.get(tenant, sessionId, now);
      return row ? { turns: row.turns, nextSeq: row.next_seq, createdAt: row.created_at } : null;
    },
    continuation(tenant, sessionId, turn, now) {
      const row = selectContinuation.get(tenant, sessionId, now, turn);
      if (!row || row.response === null) return null;
      const conversation = (JSON.parse(row.response) as RecordJson).conversation;
      return { head: { turns: row.turns, nextSeq: row.next_seq, createdAt: row.created_at }, conversation };
    },
    get(tenant, sessionId, turn, now) {
      const row = selectRecord.get(tenant, sessionId, turn, tenant, sessionId, now);
      return row?.response ? toRecord(tenant, sessionId, turn, row.response) : null;
    },
    rows(tenant, sessionId, fromTurn, toTurn, now) {
      if (!selectHead.get(tenant, sessionId, now)) return [];
      return selectRows.all(tenant, sessionId, fromTurn, toTurn).map((r) => stored(tenant, sessionId, r));
    },
    row(tenant, sessionId, seq, now) {
      if (!selectHead.get(tenant, sessionId, now)) return null;
      const r = selectRow.get(tenant, sessionId, seq);
      return r ? stored(tenant, sessionId, r) : null;
    },
    commit,
    delete(tenant, sessionId, turn) {
      const existed = removeResponse(tenant, sessionId, turn);
      if (existed) void scrubber.request();
      return existed;
    },
    deleteRow(tenant, sessionId, seq) {
      const existed = removeRow(tenant, sessionId, seq);
      if (existed) void scrubber.request();
      return existed;
    },
    thread(tenant, sessionId): ThreadRecord | null {
      const row = selectThread.get(tenant, sessionId);
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
    createConversation: (...args) => createConversation(...args),
    setMetadata: (...args) => setMetadata(...args),
  };
}
