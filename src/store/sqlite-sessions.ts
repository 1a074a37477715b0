import type { ChatMessage } from '../core/messages.js';
import { buildDetectors } from '../compliance/detectors.js';
import { redactMessage } from '../compliance/redact.js';
import type { ContentCipher } from './crypto.js';
import type { SqliteDatabase, Synchronous } from './database.js';
import type { Scrubber } from './retention.js';
import {
  contentContext,
  InvalidCursorError,
  type EncryptedField,
  missingKeyError,
  type ContentProtection,
  type SessionStore,
  type StoredMessage,
} from './sessions.js';
import {
  decodeCursor,
  encodeCursor,
  messageFrom,
  slotOf,
  toInfo,
  type MessageRow,
  type RawMessageRow,
  type Reveal,
  type SessionRow,
} from './session-rows.js';

// SessionStore on SQLite (better-sqlite3, synchronous). sqlite-store.ts puts it behind the interface's
// promises; the statements here run to completion on the calling thread.

export type SqliteSessions = Synchronous<Omit<SessionStore, 'scrubbed' | 'pruneOlderThan'>> & {
  /** Deletes up to `batch` sessions not updated since `before`; returns how many went. */
  pruneStale(before: number, batch: number): number;
  /** From now on new rows are encrypted with `next`; rows under the keys in use so far still open. */
  encryptWith(next: ContentCipher): void;
};

interface BumpParams {
  profile: string;
  now: number;
  expires: number;
  /** The profile's retention in ms, or null when it keeps sessions as long as they are used. */
  keep: number | null;
  added: number;
  id: string;
}

/** The window query (turns, id, now): exported so a test can check its plan stays an index range scan. */
export const WINDOW_SQL = `SELECT m.turn, m.role, m.content, m.content_parts, m.tool_calls, m.tool_call_id, m.name, m.seq, m.key_id
  FROM sessions s JOIN messages m ON m.session_id = s.id AND m.turn > s.turns - ?
  WHERE s.id = ? AND s.expires_at > ?
  ORDER BY m.turn, m.seq`;

/** Encrypted sessions whose decrypted window is kept in memory (least recently used ones are dropped). */
const DECRYPTED_SESSIONS = 2048;

/**
 * Every statement is prepared once here; the request path only binds and steps. `scrubber` makes deleted
 * text gone from the files after each deletion (retention.ts).
 */
export function createSqliteSessions(db: SqliteDatabase, scrubber: Scrubber, protection: ContentProtection = {}): SqliteSessions {
  // Deleted rows are overwritten with zeros (in the pages written to the WAL); the scrubber's TRUNCATE
  // checkpoint then makes the database file and the WAL both free of them. Per connection.
  db.pragma('secure_delete = ON');
  const detectors = protection.detectors ?? buildDetectors();
  const attachments = protection.attachments ?? 'drop';
  let cipher = protection.cipher ?? null;
  const keyring = new Map<string, ContentCipher>();
  for (const k of protection.readKeys ?? []) keyring.set(k.keyId, k);
  if (cipher) keyring.set(cipher.keyId, cipher);
  const retentionMs = protection.retentionMs ?? (() => null);
  const recordKey = db.prepare('INSERT OR IGNORE INTO content_keys (id, first_used_at, retired_at) VALUES (?, ?, NULL)');
  if (cipher) recordKey.run(cipher.keyId, Date.now());
  // The window of an encrypted session is read again on every turn: its messages are decrypted once and
  // kept (already redacted) for the most recently used sessions, so a turn decrypts only what is new.
  // Dropped with the session's rows on every delete, sweep, prune or reuse of an expired id.
  const opened = new Map<string, Map<number, string | null>>();
  /** The session's cache of decrypted values, marked most recently used. */
  const openedFor = (id: string): Map<number, string | null> => {
    let session = opened.get(id);
    if (session) {
      opened.delete(id);
    } else {
      session = new Map();
      if (opened.size >= DECRYPTED_SESSIONS) opened.delete(opened.keys().next().value as string);
    }
    opened.set(id, session);
    return session;
  };
  const openCached = (
    cache: Map<number, string | null>,
    open: Reveal,
    value: string | Uint8Array | null,
    keyId: string | null,
    seq: number,
    field: EncryptedField,
  ): string | null => {
    if (value === null || keyId === null) return value as string | null;
    const slot = slotOf(seq, field);
    const hit = cache.get(slot);
    if (hit !== undefined) return hit;
    const text = open(value, keyId, seq, field);
    cache.set(slot, text);
    return text;
  };
  const reveal =
    (id: string): Reveal =>
    (value, keyId, seq, field) => {
      // A name stored in clear before names were encrypted (its row's content is encrypted): text as it is.
      if (value === null || keyId === null || typeof value === 'string') return value as string | null;
      const key = keyring.get(keyId);
      if (!key) throw missingKeyError(keyId, cipher);
      return key.decrypt(value as Uint8Array, contentContext(id, seq, field));
    };
  const selectLive = db.prepare<[string, number], SessionRow>('SELECT * FROM sessions WHERE id = ? AND expires_at > ?');
  const selectFromTurn = db.prepare<[string, number], MessageRow>(
    'SELECT turn, role, content, content_parts, tool_calls, tool_call_id, name, seq, key_id, created_at FROM messages WHERE session_id = ? AND turn > ? ORDER BY turn, seq',
  );
  const selectAny = db.prepare<[string], SessionRow>('SELECT * FROM sessions WHERE id = ?');
  // The window in one statement: the live session's turn count bounds the range scan of its messages.
  // Raw rows (arrays, no per-row object with named keys): about a third faster on the request path.
  const selectWindow = db.prepare<[number, string, number], RawMessageRow>(WINDOW_SQL).raw(true);
  // The common append: bump a live session and learn where its new messages go, in one statement.
  // RETURNING gives the values after the update: the turn's first seq is next_seq minus the messages added.
  // Retention caps the sliding expiry: a session is never kept past its first turn + the shortest retention of
  // any profile it has used (retain_until; a NULL keep leaves the cap as it was). SET reads the old row.
  const bumpLive = db.prepare<[BumpParams], { turns: number; next_seq: number }>(
    `UPDATE sessions SET profile = @profile, updated_at = @now,
       retain_until = CASE WHEN @keep IS NULL THEN retain_until ELSE MIN(COALESCE(retain_until, created_at + @keep), created_at + @keep) END,
       expires_at = MIN(@expires, COALESCE(created_at + @keep, @expires), COALESCE(retain_until, @expires)),
       turns = turns + 1, next_seq = next_seq + @added
     WHERE id = @id AND expires_at > @now RETURNING turns, next_seq`,
  );
  const insertSession = db.prepare(
    'INSERT INTO sessions (id, profile, created_at, updated_at, expires_at, turns, next_seq, retain_until) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertMessage = db.prepare(
    'INSERT INTO messages (session_id, seq, turn, role, content, content_parts, tool_calls, tool_call_id, name, created_at, key_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const deleteMessages = db.prepare<[string]>('DELETE FROM messages WHERE session_id = ?');
  const deleteSession = db.prepare<[string]>('DELETE FROM sessions WHERE id = ?');
  const listFirst = db.prepare<[number, number], SessionRow>(
    'SELECT * FROM sessions WHERE expires_at > ? ORDER BY expires_at DESC, id DESC LIMIT ?',
  );
  const listAfter = db.prepare<[number, number, number, string, number], SessionRow>(
    'SELECT * FROM sessions WHERE expires_at > ? AND (expires_at < ? OR (expires_at = ? AND id < ?)) ORDER BY expires_at DESC, id DESC LIMIT ?',
  );
  const selectExpired = db.prepare<[number, number], { id: string }>('SELECT id FROM sessions WHERE expires_at <= ? LIMIT ?');
  const selectChunk = db.prepare<[string, number], { id: string; profile: string; created_at: number; retain_until: number | null }>(
    'SELECT id, profile, created_at, retain_until FROM sessions WHERE id > ? ORDER BY id LIMIT ?',
  );
  const capExpiry = db.prepare<[number, number, string]>(
    'UPDATE sessions SET retain_until = ?, expires_at = MIN(expires_at, ?) WHERE id = ?',
  );
  const selectStale = db.prepare<[number, number], { id: string }>('SELECT id FROM sessions WHERE updated_at < ? LIMIT ?');

  const removeSession = (id: string): boolean => {
    opened.delete(id);
    deleteMessages.run(id);
    return deleteSession.run(id).changes > 0;
  };

  const insertMessages = (id: string, turn: number, firstSeq: number, messages: ChatMessage[], now: number): number => {
    let seq = firstSeq;
    // The key in force for this turn (a rotation may put another in force later: encryptWith).
    const sealer = cipher;
    for (const original of messages) {
      // Redaction of every text field before anything is written: the placeholders are all the database
      // ever sees, and attachments are a placeholder too unless kept.
      const m = redactMessage(original, detectors, { attachments });
      const parts = Array.isArray(m.content);
      let content: string | Buffer | null = parts ? JSON.stringify(m.content) : typeof m.content === 'string' ? m.content : null;
      let toolCalls: string | Buffer | null = m.tool_calls && m.tool_calls.length > 0 ? JSON.stringify(m.tool_calls) : null;
      let name: string | Buffer | null = m.name ?? null;
      if (sealer) {
        // The next turn's window needs these again: keep the text, so it is never decrypted in this process.
        const cache = openedFor(id);
        const seal = (text: string | null, field: EncryptedField): Buffer | null => {
          if (text === null) return null;
          cache.set(slotOf(seq, field), text);
          return sealer.encrypt(text, contentContext(id, seq, field));
        };
        content = seal(content as string | null, 'content');
        toolCalls = seal(toolCalls as string | null, 'tool_calls');
        name = seal(name as string | null, 'name');
      }
      insertMessage.run(
        id,
        seq,
        turn,
        m.role,
        content,
        parts ? 1 : 0,
        toolCalls,
        m.tool_call_id ?? null,
        name,
        now,
        sealer ? sealer.keyId : null,
      );
      seq++;
    }
    return seq;
  };

  const appendTurn = db.transaction((id: string, profile: string, messages: ChatMessage[], ttlMs: number, now: number) => {
    const keepMs = retentionMs(profile);
    const live = bumpLive.get({ profile, now, expires: now + ttlMs, keep: keepMs, added: messages.length, id });
    if (live) {
      insertMessages(id, live.turns, live.next_seq - messages.length, messages, now);
      return;
    }
    // New, or expired: an expired session was never served, and a new turn on its id starts afresh.
    removeSession(id);
    const next = insertMessages(id, 1, 0, messages, now);
    insertSession.run(
      id,
      profile,
      now,
      now,
      Math.min(now + ttlMs, now + (keepMs ?? Infinity)),
      1,
      next,
      keepMs === null ? null : now + keepMs,
    );
  });

  const deleteRows = db.transaction((ids: string[]) => {
    let n = 0;
    for (const id of ids) if (removeSession(id)) n++;
    return n;
  });
  const deleteBatch = (ids: string[]): number => {
    const n = ids.length === 0 ? 0 : deleteRows(ids);
    if (n > 0) void scrubber.request();
    return n;
  };

  const messageOf = (id: string, row: MessageRow, open: Reveal): ChatMessage =>
    messageFrom(
      row.role,
      open(row.content, row.key_id, row.seq, 'content'),
      row.content_parts,
      open(row.tool_calls, row.key_id, row.seq, 'tool_calls'),
      row.tool_call_id,
      open(row.name, row.key_id, row.seq, 'name'),
    );

  return {
    loadWindow(id, turns, now) {
      if (turns <= 0) return [];
      const rows = selectWindow.all(turns, id, now) as unknown as RawMessageRow[];
      const out: StoredMessage[] = new Array<StoredMessage>(rows.length);
      const cache = keyring.size > 0 || rows.some((r) => r[8] !== null) ? openedFor(id) : null;
      const open = cache ? reveal(id) : null;
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        out[i] = {
          turn: r[0],
          message: cache
            ? messageFrom(
                r[1],
                openCached(cache, open!, r[2], r[8], r[7], 'content'),
                r[3],
                openCached(cache, open!, r[4], r[8], r[7], 'tool_calls'),
                r[5],
                openCached(cache, open!, r[6], r[8], r[7], 'name'),
              )
            : messageFrom(r[1], r[2] as string | null, r[3], r[4] as string | null, r[5], r[6] as string | null),
        };
      }
      return out;
    },
    appendTurn(id, profile, messages, ttlMs, now) {
      try {
        appendTurn(id, profile, messages, ttlMs, now);
      } catch (err) {
        // Rolled back: the cached text of this turn belongs to seqs the next turn will reuse.
        opened.delete(id);
        throw err;
      }
    },
    get(id, now) {
      const session = selectLive.get(id, now);
      if (!session) return null;
      const open = reveal(id);
      return { ...toInfo(session), messages: selectFromTurn.all(id, 0).map((row) => messageOf(id, row, open)) };
    },
    list({ now, limit, cursor }) {
      let rows: SessionRow[];
      if (cursor) {
        const after = decodeCursor(cursor);
        if (!after) throw new InvalidCursorError(`cursor "${cursor}" is not one this server gave out`);
        rows = listAfter.all(now, after.expiresAt, after.expiresAt, after.id, limit + 1);
      } else {
        rows = listFirst.all(now, limit + 1);
      }
      const more = rows.length > limit;
      const page = more ? rows.slice(0, limit) : rows;
      return { sessions: page.map(toInfo), nextCursor: more ? encodeCursor(page[page.length - 1]!) : null };
    },
    delete(id) {
      return deleteBatch([id]) > 0;
    },
    sweepExpired(now, batch = 500) {
      return deleteBatch(selectExpired.all(now, batch).map((r) => r.id));
    },
    pruneStale(before, batch) {
      return deleteBatch(selectStale.all(before, batch).map((r) => r.id));
    },
    encryptWith(next) {
      recordKey.run(next.keyId, Date.now());
      keyring.set(next.keyId, next);
      cipher = next;
    },
    export(id) {
      const session = selectAny.get(id);
      if (!session) return null;
      const open = reveal(id);
      const messages = selectFromTurn.all(id, 0).map((row) => ({ ...messageOf(id, row, open), turn: row.turn, createdAt: row.created_at }));
      return { ...toInfo(session), messages };
    },
    capRetention(afterId, batch = 500) {
      const rows = selectChunk.all(afterId, batch);
      let capped = 0;
      db.transaction(() => {
        for (const r of rows) {
          const keep = retentionMs(r.profile);
          const until = keep === null ? null : r.created_at + keep;
          if (until !== null && (r.retain_until === null || r.retain_until > until)) {
            capExpiry.run(until, until, r.id);
            capped++;
          }
        }
      })();
      return { next: rows.length === batch ? rows[rows.length - 1]!.id : null, capped };
    },
  };
}
