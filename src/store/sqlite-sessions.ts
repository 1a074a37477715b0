import type { ChatMessage } from '../core/messages.js';
import { sessionKey } from '../core/tenant.js';
import { buildDetectors } from '../compliance/detectors.js';
import { redactMessage } from '../compliance/redact.js';
import type { ContentCipher } from './crypto.js';
import type { SqliteDatabase, Synchronous } from './database.js';
import { isLockError } from './lock-wait.js';
import type { Scrubber } from './retention.js';
import type { BumpParams, SqliteSessions, TurnArgs, TurnExtra } from './sqlite-session-types.js';
import { createWindowCache } from './window-cache.js';
import { createSessionListing } from './session-listing.js';
import { bucketOf } from './expiry-bucket.js';
import {
  contentContext,
  type EncryptedField,
  missingKeyError,
  type ContentProtection,
  type SessionRef,
  type SessionStore,
  type StoredMessage,
} from './sessions.js';
import { messageFrom, slotOf, toInfo, type MessageRow, type RawMessageRow, type Reveal, type SessionRow } from './session-rows.js';
import { openCached } from './session-rows.js';

// SessionStore on SQLite (better-sqlite3, synchronous). sqlite-store.ts puts it behind the interface's
// promises; the statements here run to completion on the calling thread.

export type { SqliteSessions, TurnArgs, TurnExtra } from './sqlite-session-types.js';

/** The window query (turns, tenant, id, now): exported so a test can check its plan stays an index range scan. */
export const WINDOW_SQL = `SELECT m.turn, m.role, m.content, m.content_parts, m.tool_calls, m.tool_call_id, m.name, m.seq, m.key_id, s.turns
  FROM sessions s JOIN messages m ON m.tenant = s.tenant AND m.session_id = s.id AND m.turn > s.turns - ?
  WHERE s.tenant = ? AND s.id = ? AND s.expires_at > ?
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
  // No retention anywhere: the start-up pass over every session has nothing to cap (ContentProtection).
  const anyRetention = protection.retentionMs !== undefined && protection.anyRetention !== false;
  const recordKey = db.prepare('INSERT OR IGNORE INTO content_keys (id, first_used_at, retired_at) VALUES (?, ?, NULL)');
  if (cipher) recordKey.run(cipher.keyId, Date.now());
  // The window of an encrypted session is read again on every turn: its messages are decrypted once and
  // kept (already redacted) for the most recently used sessions, so a turn decrypts only what is new.
  // Dropped with the session's rows on every delete, sweep, prune or reuse of an expired id.
  // Keyed by sessionKey(tenant, id).
  const opened = new Map<string, Map<number, string | null>>();
  /** The session's cache of decrypted values, marked most recently used. */
  const openedFor = (tenant: string, id: string): Map<number, string | null> => {
    const key = sessionKey(tenant, id);
    let session = opened.get(key);
    if (session) {
      opened.delete(key);
    } else {
      session = new Map();
      if (opened.size >= DECRYPTED_SESSIONS) opened.delete(opened.keys().next().value as string);
    }
    opened.set(key, session);
    return session;
  };
  const reveal =
    (tenant: string, id: string): Reveal =>
    (value, keyId, seq, field) => {
      // A name stored in clear before names were encrypted (its row's content is encrypted): text as it is.
      if (value === null || keyId === null || typeof value === 'string') return value as string | null;
      const key = keyring.get(keyId);
      if (!key) throw missingKeyError(keyId, cipher);
      return key.decrypt(value as Uint8Array, contentContext(tenant, id, seq, field));
    };
  const selectLive = db.prepare<[string, string, number], SessionRow>(
    'SELECT * FROM sessions WHERE tenant = ? AND id = ? AND expires_at > ?',
  );
  const selectFromTurn = db.prepare<[string, string, number], MessageRow>(
    'SELECT turn, role, content, content_parts, tool_calls, tool_call_id, name, seq, key_id, created_at FROM messages WHERE tenant = ? AND session_id = ? AND turn > ? ORDER BY turn, seq',
  );
  const selectAny = db.prepare<[string, string], SessionRow>('SELECT * FROM sessions WHERE tenant = ? AND id = ?');
  // The window in one statement: the live session's turn count bounds the range scan of its messages.
  // Raw rows (arrays, no per-row object with named keys): about a third faster on the request path.
  const selectWindow = db.prepare<[number, string, string, number], RawMessageRow>(WINDOW_SQL).raw(true);
  // The common append: bump a live session, then read where its new messages go (the values after the
  // update, in the same transaction: the turn's first seq is next_seq minus the messages added). Not RETURNING:
  // that made the UPDATE 25 us instead of 4-6 (measured alone, 20,000 sessions), the read after it 1-3 (#21).
  // Retention caps the sliding expiry: a session is never kept past its first turn + the shortest retention of
  // any profile it has used (retain_until; a NULL keep leaves the cap as it was). SET reads the old row.
  const bumpLive = db.prepare<[BumpParams]>(
    `UPDATE sessions SET profile = @profile, updated_at = @now,
       retain_until = CASE WHEN @keep IS NULL THEN retain_until ELSE MIN(COALESCE(retain_until, created_at + @keep), created_at + @keep) END,
       expires_at = MIN(@expires, COALESCE(created_at + @keep, @expires), COALESCE(retain_until, @expires)),
       turns = turns + 1, next_seq = next_seq + @added
     WHERE tenant = @tenant AND id = @id AND expires_at > @now`,
  );
  const selectCounts = db
    .prepare<[string, string], [number, number]>('SELECT turns, next_seq FROM sessions WHERE tenant = ? AND id = ?')
    .raw(true);
  // The bump above sets expires_at only: the schema's trigger moves expiry_bucket (and so the indexes) when
  // the expiry crossed into another bucket. A new row gets its bucket here, so the trigger has nothing to do.
  const insertSession = db.prepare(
    'INSERT INTO sessions (tenant, id, profile, created_at, updated_at, expires_at, turns, next_seq, retain_until, expiry_bucket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const insertMessage = db.prepare(
    'INSERT INTO messages (tenant, session_id, seq, turn, role, content, content_parts, tool_calls, tool_call_id, name, created_at, key_id, response) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  // Erasing a session's text before its rows: see removeSession.
  const blankMessages = db.prepare<[string, string]>(
    'UPDATE messages SET content = NULL, tool_calls = NULL WHERE tenant = ? AND session_id = ? AND (content IS NOT NULL OR tool_calls IS NOT NULL)',
  );
  const deleteMessages = db.prepare<[string, string]>('DELETE FROM messages WHERE tenant = ? AND session_id = ?');
  const deleteSession = db.prepare<[string, string]>('DELETE FROM sessions WHERE tenant = ? AND id = ?');
  // Expired sessions through the expiry indexes: their buckets are at most now's (expiry-bucket.ts), and the
  // exact expiry leaves the live ones of now's bucket (parameters: bucketOf(now), now).
  const selectExpired = db.prepare<[number, number, number], SessionRef>(
    'SELECT tenant, id FROM sessions WHERE expiry_bucket <= ? AND expires_at <= ? LIMIT ?',
  );
  const selectExpiredOfTenant = db.prepare<[string, number, number, number], SessionRef>(
    'SELECT tenant, id FROM sessions WHERE tenant = ? AND expiry_bucket <= ? AND expires_at <= ? LIMIT ?',
  );
  const selectOfTenant = db.prepare<[string, number], SessionRef>('SELECT tenant, id FROM sessions WHERE tenant = ? LIMIT ?');
  const selectChunk = db.prepare<
    [string, string, number],
    { tenant: string; id: string; profile: string; created_at: number; retain_until: number | null }
  >('SELECT tenant, id, profile, created_at, retain_until FROM sessions WHERE (tenant, id) > (?, ?) ORDER BY tenant, id LIMIT ?');
  const capExpiry = db.prepare<[number, number, string, string]>(
    'UPDATE sessions SET retain_until = ?, expires_at = MIN(expires_at, ?) WHERE tenant = ? AND id = ?',
  );
  const selectStale = db.prepare<[number, number], SessionRef>('SELECT tenant, id FROM sessions WHERE updated_at < ? LIMIT ?');
  const selectStaleOfTenant = db.prepare<[string, number, number], SessionRef>(
    'SELECT tenant, id FROM sessions WHERE tenant = ? AND updated_at < ? LIMIT ?',
  );

  // What is kept of a session in memory (its decrypted text, its window), dropped when its rows change.
  const windows = createWindowCache(db);
  const forget = (tenant: string, id: string): void => {
    opened.delete(sessionKey(tenant, id));
    windows.forget(tenant, id);
  };
  const removeSession = (tenant: string, id: string): boolean => {
    forget(tenant, id);
    // The text first, in place: a shorter row is rewritten where it is (secure_delete zeroes the old bytes)
    // and never moves a cell. Deleting several rows of a page can rebalance it, and SQLite rebuilds a page
    // without zeroing the gap the moved cells leave, so rows still holding text when their neighbours go
    // could leave a copy there that no later delete reaches (seen with the session rows of schema 6).
    blankMessages.run(tenant, id);
    deleteMessages.run(tenant, id);
    return deleteSession.run(tenant, id).changes > 0;
  };

  const insertMessages = (
    tenant: string,
    id: string,
    turn: number,
    firstSeq: number,
    messages: ChatMessage[],
    now: number,
    record?: TurnExtra['record'],
  ): number => {
    let seq = firstSeq;
    const last = firstSeq + messages.length - 1;
    // The key in force for this turn (a rotation may put another in force later: encryptWith).
    const sealer = cipher;
    const rows: RawMessageRow[] = [];
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
        const cache = openedFor(tenant, id);
        const seal = (text: string | null, field: EncryptedField): Buffer | null => {
          if (text === null) return null;
          cache.set(slotOf(seq, field), text);
          return sealer.encrypt(text, contentContext(tenant, id, seq, field));
        };
        content = seal(content as string | null, 'content');
        toolCalls = seal(toolCalls as string | null, 'tool_calls');
        name = seal(name as string | null, 'name');
      }
      insertMessage.run(
        tenant,
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
        record && seq === last ? record(turn, firstSeq) : null,
      );
      rows.push([turn, m.role, content, parts ? 1 : 0, toolCalls, m.tool_call_id ?? null, name, seq, sealer ? sealer.keyId : null]);
      seq++;
    }
    windows.appended(tenant, id, turn, rows);
    return seq;
  };

  const appendTurn = db.transaction(
    (tenant: string, id: string, profile: string, messages: ChatMessage[], ttlMs: number, now: number, extra?: TurnExtra) => {
      append(tenant, id, profile, messages, ttlMs, now, extra?.record);
      extra?.then?.();
    },
  );
  const append = (
    tenant: string,
    id: string,
    profile: string,
    messages: ChatMessage[],
    ttlMs: number,
    now: number,
    record?: TurnExtra['record'],
  ): void => {
    const keepMs = retentionMs(profile);
    if (bumpLive.run({ tenant, profile, now, expires: now + ttlMs, keep: keepMs, added: messages.length, id }).changes > 0) {
      const [turns, nextSeq] = selectCounts.get(tenant, id)!;
      insertMessages(tenant, id, turns, nextSeq - messages.length, messages, now, record);
      return;
    }
    // New, or expired: an expired session was never served, and a new turn on its id starts afresh.
    removeSession(tenant, id);
    const next = insertMessages(tenant, id, 1, 0, messages, now, record);
    const expires = Math.min(now + ttlMs, now + (keepMs ?? Infinity));
    insertSession.run(tenant, id, profile, now, now, expires, 1, next, keepMs === null ? null : now + keepMs, bucketOf(expires));
  };

  // Nested in this transaction, each appendTurn is a savepoint: a turn that fails is rolled back alone. An error
  // that ended the transaction (some I/O errors) or another connection's lock (lock-wait.ts retries) fails all.
  const appendGroup = db.transaction((turns: readonly TurnArgs[], errors: unknown[]) => {
    for (let i = 0; i < turns.length; i++) {
      try {
        appendTurn(...turns[i]!);
      } catch (err) {
        if (!db.inTransaction || isLockError(err)) throw err;
        forget(turns[i]![0], turns[i]![1]);
        errors[i] = err;
      }
    }
  });
  const deleteRows = db.transaction((refs: SessionRef[]) => {
    let n = 0;
    for (const r of refs) if (removeSession(r.tenant, r.id)) n++;
    return n;
  });
  const deleteBatch = (refs: SessionRef[]): number => {
    const n = refs.length === 0 ? 0 : deleteRows(refs);
    if (n > 0) void scrubber.request();
    return n;
  };
  const messageOf = (row: MessageRow, open: Reveal): ChatMessage =>
    messageFrom(
      row.role,
      open(row.content, row.key_id, row.seq, 'content'),
      row.content_parts,
      open(row.tool_calls, row.key_id, row.seq, 'tool_calls'),
      row.tool_call_id,
      open(row.name, row.key_id, row.seq, 'name'),
    );

  const { list, liveSessions } = createSessionListing(db);
  return {
    list,
    liveSessions,
    loadWindow(tenant, id, turns, now) {
      if (turns <= 0) return [];
      let rows = windows.rows(tenant, id, turns, now);
      if (rows === null) {
        rows = selectWindow.all(turns, tenant, id, now) as unknown as RawMessageRow[];
        // Each row ends with the session's turn count (the window query's last column).
        if (rows.length > 0) windows.loaded(tenant, id, turns, rows, (rows[0] as unknown[])[9] as number);
      }
      const out: StoredMessage[] = new Array<StoredMessage>(rows.length);
      const cache = keyring.size > 0 || rows.some((r) => r[8] !== null) ? openedFor(tenant, id) : null;
      const open = cache ? reveal(tenant, id) : null;
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
    appendTurn(tenant, id, profile, messages, ttlMs, now, extra?: TurnExtra) {
      try {
        appendTurn(tenant, id, profile, messages, ttlMs, now, extra);
      } catch (err) {
        // Rolled back: the cached text of this turn belongs to seqs the next turn will reuse.
        forget(tenant, id);
        throw err;
      }
    },
    forget,
    appendTurns(turns) {
      const errors = new Array<unknown>(turns.length).fill(undefined);
      try {
        appendGroup(turns, errors);
      } catch (err) {
        for (const t of turns) forget(t[0], t[1]);
        throw err;
      }
      return errors;
    },
    get(tenant, id, now) {
      const session = selectLive.get(tenant, id, now);
      if (!session) return null;
      const open = reveal(tenant, id);
      return { ...toInfo(session), messages: selectFromTurn.all(tenant, id, 0).map((row) => messageOf(row, open)) };
    },
    delete(tenant, id) {
      return deleteBatch([{ tenant, id }]) > 0;
    },
    deleteOfTenant(tenant, batch) {
      return deleteBatch(selectOfTenant.all(tenant, batch));
    },
    sweepExpired(now, batch = 500, tenant = null) {
      const refs =
        tenant === null ? selectExpired.all(bucketOf(now), now, batch) : selectExpiredOfTenant.all(tenant, bucketOf(now), now, batch);
      return deleteBatch(refs);
    },
    pruneStale(before, batch, tenant) {
      return deleteBatch(tenant === null ? selectStale.all(before, batch) : selectStaleOfTenant.all(tenant, before, batch));
    },
    encryptWith(next) {
      recordKey.run(next.keyId, Date.now());
      keyring.set(next.keyId, next);
      cipher = next;
    },
    export(tenant, id) {
      const session = selectAny.get(tenant, id);
      if (!session) return null;
      const open = reveal(tenant, id);
      const messages = selectFromTurn
        .all(tenant, id, 0)
        .map((row) => ({ ...messageOf(row, open), turn: row.turn, createdAt: row.created_at }));
      return { ...toInfo(session), messages };
    },
    capRetention(after, batch = 500) {
      if (!anyRetention) return { next: null, capped: 0 };
      const rows = selectChunk.all(after?.tenant ?? '', after?.id ?? '', batch);
      let capped = 0;
      db.transaction(() => {
        for (const r of rows) {
          const keep = retentionMs(r.profile);
          const until = keep === null ? null : r.created_at + keep;
          if (until !== null && (r.retain_until === null || r.retain_until > until)) {
            capExpiry.run(until, until, r.tenant, r.id);
            capped++;
          }
        }
      })();
      const last = rows[rows.length - 1];
      return { next: rows.length === batch && last ? { tenant: last.tenant, id: last.id } : null, capped };
    },
  };
}
