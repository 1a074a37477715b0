// The Responses API's records beside the messages (sqlite-responses.ts): how a response's settings and a
// thread's metadata are redacted (every string, metadata values whatever their key) and bound to their row
// when encrypted, and their key rotation (key-rotation.ts rotates the messages and then calls it).

import { redactText, type Detector } from '../compliance/detectors.js';
import { rewriteRecord, rewriteText } from '../compliance/records.js';
import type { ContentCipher } from './crypto.js';
import type { SqliteDatabase } from './database.js';
import { missingKeyError } from './sessions.js';
import type { ResponseRecord } from './responses.js';

/**
 * Additional data of an encrypted value: a response's settings are bound to its session and creation time
 * (unique within the session), a thread's metadata to its session.
 */
export function recordContext(table: 'responses' | 'threads', tenant: string, sessionId: string, createdAt = 0): string {
  return table === 'responses'
    ? `responses\u0000${tenant}\u0000${sessionId}\u0000${createdAt}`
    : `threads\u0000${tenant}\u0000${sessionId}`;
}

/** The settings and metadata with every string redacted: metadata values whatever their key, the rest as records are. */
export function redactSettings(value: Record<string, unknown>, detectors: readonly Detector[]): Record<string, unknown> {
  if (detectors.length === 0) return value;
  const rewrite = (t: string) => redactText(t, detectors);
  const out = rewriteRecord(value, rewrite, 'keep') as Record<string, unknown>;
  const metadata = value.metadata;
  if (metadata === null || typeof metadata !== 'object') return out;
  const m: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(metadata)) m[k] = typeof v === 'string' ? rewriteText(v, rewrite) : v;
  return { ...out, metadata: m };
}

/**
 * Key rotation of the responses' settings and the threads' metadata (the messages are rotated by
 * key-rotation.ts): every value not under `to` re-encrypted under it, plain ones encrypted. Returns how many.
 */
export function rotateRecordKeys(db: SqliteDatabase, from: ReadonlyMap<string, ContentCipher>, to: ContentCipher): number {
  let rows = 0;
  const tables = [
    {
      select: `SELECT tenant, session_id AS id, turn, created_at, settings AS value, key_id FROM response_settings WHERE key_id IS NOT ? AND settings IS NOT NULL`,
      update: 'UPDATE response_settings SET settings = ?, key_id = ? WHERE tenant = ? AND session_id = ? AND turn = ?',
      context: (r: RecordRow) => recordContext('responses', r.tenant, r.id, r.created_at),
      key: (r: RecordRow) => [r.tenant, r.id, r.turn],
    },
    {
      select: `SELECT tenant, id, 0 AS turn, created_at, metadata AS value, key_id FROM threads WHERE key_id IS NOT ? AND metadata IS NOT NULL`,
      update: 'UPDATE threads SET metadata = ?, key_id = ? WHERE tenant = ? AND id = ?',
      context: (r: RecordRow) => recordContext('threads', r.tenant, r.id),
      key: (r: RecordRow) => [r.tenant, r.id],
    },
  ];
  for (const table of tables) {
    const select = db.prepare<[string], RecordRow>(table.select);
    const update = db.prepare(table.update);
    db.transaction(() => {
      for (const r of select.all(to.keyId)) {
        const context = table.context(r);
        let text: string;
        if (r.key_id === null) text = typeof r.value === 'string' ? r.value : Buffer.from(r.value).toString('utf8');
        else {
          const key = from.get(r.key_id);
          if (!key) throw missingKeyError(r.key_id, to);
          text = key.decrypt(r.value as Uint8Array, context);
        }
        update.run(to.encrypt(text, context), to.keyId, ...table.key(r));
        rows++;
      }
    })();
  }
  return rows;
}

interface RecordRow {
  tenant: string;
  id: string;
  turn: number;
  created_at: number;
  value: string | Uint8Array;
  key_id: string | null;
}

/** Whether a response's settings or a thread's metadata is still encrypted with `keyId`. */
export function recordKeyInUse(db: SqliteDatabase, keyId: string): boolean {
  return (
    db
      .prepare<[string, string], { n: number }>(
        'SELECT EXISTS (SELECT 1 FROM response_settings WHERE key_id = ?) OR EXISTS (SELECT 1 FROM threads WHERE key_id = ?) AS n',
      )
      .get(keyId, keyId)!.n === 1
  );
}

/** What messages.response holds (JSON): a response's record, on the last message of its turn. */
export interface RecordJson {
  previous: string | null;
  conversation: boolean;
  inputs: number;
  /** Seqs of the turn's first message and of its first output message (set by the statement that writes it). */
  first: number;
  out: number;
  created: number;
  model: string;
  status: string;
  usage: [number, number] | null;
  /** A response_settings row holds its settings. */
  settings: boolean;
}

/** The ResponseRecord a stored record describes, with its settings (read by the store, {} when it has none). */
export function recordFrom(sessionId: string, turn: number, r: RecordJson, settings: Record<string, unknown>): ResponseRecord {
  return {
    sessionId,
    turn,
    firstSeq: r.first,
    inputs: r.inputs,
    outputSeq: r.out,
    previousId: r.previous,
    conversation: r.conversation,
    createdAt: r.created,
    model: r.model,
    status: r.status,
    inputTokens: r.usage?.[0] ?? null,
    outputTokens: r.usage?.[1] ?? null,
    settings,
  };
}
