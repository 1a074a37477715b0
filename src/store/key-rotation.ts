import { ConflictError } from '../core/errors.js';
import type { ContentCipher } from './crypto.js';
import type { SqliteDatabase } from './database.js';
import { contentContext, missingKeyError, type EncryptedField } from './sessions.js';
import { recordKeyInUse, rotateRecordKeys } from './response-records.js';

export interface RotationResult {
  /** Message rows re-encrypted (or encrypted for the first time, when they were plain text). */
  rows: number;
  /** Rows already under the new key (a rotation that was interrupted and run again). */
  alreadyCurrent: number;
  /** Whether the old values are gone from the files too (TRUNCATE checkpoint). */
  scrubbed: boolean;
  /** The keys marked retired: none of the rows needs them any more. */
  retired: string[];
}

/**
 * Re-encrypts every stored message under `to`, in batches of `batch` rows (one transaction each, so a
 * daemon's reads interleave and an interrupted run can simply be run again), then the Responses API's
 * settings and metadata. Rows in plain text are
 * encrypted too: after a rotation nothing in the database opens without the new key. The old keys are
 * marked retired; then the old values are scrubbed from the database and WAL files (`scrub`). It yields to
 * the event loop between batches, so a daemon serving requests runs it without stalling them.
 */
export async function rotateContentKey(
  db: SqliteDatabase,
  options: {
    from: readonly ContentCipher[];
    to: ContentCipher;
    scrub: () => Promise<boolean>;
    /** Runs each batch's transaction (lock-wait.ts: waits for another connection's lock off the event loop). */
    write: <T>(op: () => T) => Promise<T>;
    batch?: number;
    now?: number;
    onProgress?: (rows: number) => void;
    /** Stops between batches (the caller went away, the daemon is stopping): run it again to go on. */
    signal?: AbortSignal;
  },
): Promise<RotationResult> {
  const batch = options.batch ?? 500;
  const keys = new Map(options.from.map((k) => [k.keyId, k]));
  const { to } = options;
  const page = db.prepare<
    [number, number],
    {
      rowid: number;
      tenant: string;
      session_id: string;
      seq: number;
      content: string | Uint8Array | null;
      tool_calls: string | Uint8Array | null;
      name: string | Uint8Array | null;
      key_id: string | null;
    }
  >('SELECT rowid, tenant, session_id, seq, content, tool_calls, name, key_id FROM messages WHERE rowid > ? ORDER BY rowid LIMIT ?');
  const update = db.prepare('UPDATE messages SET content = ?, tool_calls = ?, name = ?, key_id = ? WHERE rowid = ?');
  let rows = 0;
  let alreadyCurrent = 0;
  // Counts per batch, added up once the batch committed: a batch that met a lock is run again whole.
  const step = db.transaction((after: number): { last: number; rows: number; current: number } => {
    const done = { last: -1, rows: 0, current: 0 };
    for (const r of page.all(after, batch)) {
      done.last = r.rowid;
      if (r.key_id === to.keyId) {
        done.current++;
        continue;
      }
      const old = r.key_id === null ? null : keys.get(r.key_id);
      if (r.key_id !== null && !old) throw missingKeyError(r.key_id, options.from[0] ?? null);
      // A name in clear (stored before names were encrypted) is text in an otherwise encrypted row.
      const open = (value: string | Uint8Array | null, field: EncryptedField): string | null =>
        value === null || typeof value === 'string'
          ? value
          : old
            ? old.decrypt(value, contentContext(r.tenant, r.session_id, r.seq, field))
            : Buffer.from(value).toString('utf8');
      const seal = (field: EncryptedField, value: string | Uint8Array | null): Buffer | null => {
        const text = open(value, field);
        return text === null ? null : to.encrypt(text, contentContext(r.tenant, r.session_id, r.seq, field));
      };
      update.run(seal('content', r.content), seal('tool_calls', r.tool_calls), seal('name', r.name), to.keyId, r.rowid);
      done.rows++;
    }
    return done;
  });
  const now = options.now ?? Date.now();
  const { write } = options;
  await write(() =>
    db.prepare('INSERT OR IGNORE INTO content_keys (id, first_used_at, retired_at) VALUES (?, ?, NULL)').run(to.keyId, now),
  );
  for (let after = 0; after >= 0;) {
    if (options.signal?.aborted) {
      throw new ConflictError(`key rotation stopped after ${rows} row(s) (${String(options.signal.reason ?? 'cancelled')})`, {
        next: 'Run cs-llm store rotate-key again with the same key file: it goes on where it stopped.',
      });
    }
    const from = after;
    const done = await write(() => step.immediate(from));
    rows += done.rows;
    alreadyCurrent += done.current;
    after = done.last;
    options.onProgress?.(rows);
    if (after >= 0) await new Promise((resolve) => setImmediate(resolve));
  }
  // Responses' settings and conversations' metadata: few and small next to the messages, in one pass.
  rows += await write(() => rotateRecordKeys(db, keys, to));
  const retired = await write(() =>
    db
      .prepare<[number, string], { id: string }>('UPDATE content_keys SET retired_at = ? WHERE id <> ? AND retired_at IS NULL RETURNING id')
      .all(now, to.keyId)
      .map((r) => r.id),
  );
  return { rows, alreadyCurrent, scrubbed: await options.scrub(), retired };
}

/**
 * Refuses (with the fix) when the database holds messages encrypted with a key that is not configured: a
 * daemon would otherwise start and fail on the first turn of such a session. Keys whose rows are all gone
 * are marked retired on the way.
 */
export function requireContentKeys(db: SqliteDatabase, cipher: ContentCipher | null, now = Date.now()): void {
  const active = db.prepare<[], { id: string }>('SELECT id FROM content_keys WHERE retired_at IS NULL').all();
  const stillUsed = db.prepare<[string], { n: number }>('SELECT EXISTS (SELECT 1 FROM messages WHERE key_id = ?) AS n');
  const retire = db.prepare('UPDATE content_keys SET retired_at = ? WHERE id = ?');
  for (const { id } of active) {
    if (cipher && id === cipher.keyId) continue;
    if (stillUsed.get(id)!.n === 1 || recordKeyInUse(db, id)) throw missingKeyError(id, cipher);
    retire.run(now, id);
  }
}
