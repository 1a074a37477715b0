import type { SqliteDatabase } from './database.js';

/** A chat message as OpenAI's API carries it. content is a string, null, or an array of content parts. */
export interface ChatMessage {
  role: string;
  content?: string | null | unknown[];
  tool_calls?: unknown[];
  tool_call_id?: string;
  name?: string;
}

/** A stored message with the turn it belongs to (all messages one request stored share a turn). */
export interface StoredMessage {
  turn: number;
  message: ChatMessage;
}

export interface SessionInfo {
  id: string;
  profile: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  turns: number;
}

export interface SessionPage {
  sessions: SessionInfo[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/**
 * The daemon's memory. Times are milliseconds since the epoch, passed in so callers (and tests) own the
 * clock. An expired session is treated as absent everywhere, even before the sweeper deletes it.
 */
export interface SessionStore {
  /** The messages of the last `turns` turns, oldest first; [] for an absent or expired session. */
  loadWindow(id: string, turns: number, now: number): StoredMessage[];
  /** Stores one turn (the request's new messages and the reply) in one transaction and renews the TTL. */
  appendTurn(id: string, profile: string, messages: ChatMessage[], ttlMs: number, now: number): void;
  get(id: string, now: number): (SessionInfo & { messages: ChatMessage[] }) | null;
  /** Live sessions, the latest to expire (the most recently used, within a TTL) first. */
  list(options: { now: number; limit: number; cursor?: string | null }): SessionPage;
  /** true when the session existed (expired or not). */
  delete(id: string): boolean;
  /** Deletes up to `batch` expired sessions; returns how many went. Call again while it returns `batch`. */
  sweepExpired(now: number, batch?: number): number;
  /** Deletes sessions not updated since `before`; returns how many went. */
  pruneOlderThan(before: number): number;
}

interface MessageRow {
  turn: number;
  role: string;
  content: string | null;
  content_parts: number;
  tool_calls: string | null;
  tool_call_id: string | null;
  name: string | null;
}

type RawMessageRow = [number, string, string | null, number, string | null, string | null, string | null];

interface SessionRow {
  id: string;
  profile: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
  turns: number;
  next_seq: number;
}

function messageFrom(
  role: string,
  content: string | null,
  contentParts: number,
  toolCalls: string | null,
  toolCallId: string | null,
  name: string | null,
): ChatMessage {
  const message: ChatMessage = { role, content: contentParts === 1 && content !== null ? (JSON.parse(content) as unknown[]) : content };
  if (toolCalls !== null) message.tool_calls = JSON.parse(toolCalls) as unknown[];
  if (toolCallId !== null) message.tool_call_id = toolCallId;
  if (name !== null) message.name = name;
  return message;
}

function toMessage(row: MessageRow): ChatMessage {
  return messageFrom(row.role, row.content, row.content_parts, row.tool_calls, row.tool_call_id, row.name);
}

function toInfo(row: SessionRow): SessionInfo {
  return {
    id: row.id,
    profile: row.profile,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    turns: row.turns,
  };
}

function encodeCursor(row: { expires_at: number; id: string }): string {
  return Buffer.from(`${row.expires_at}:${row.id}`, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): { expiresAt: number; id: string } | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const colon = text.indexOf(':');
  if (colon < 1) return null;
  const expiresAt = Number(text.slice(0, colon));
  if (!Number.isInteger(expiresAt)) return null;
  return { expiresAt, id: text.slice(colon + 1) };
}

/** The window query (turns, id, now): exported so a test can check its plan stays an index range scan. */
export const WINDOW_SQL = `SELECT m.turn, m.role, m.content, m.content_parts, m.tool_calls, m.tool_call_id, m.name
  FROM sessions s JOIN messages m ON m.session_id = s.id AND m.turn > s.turns - ?
  WHERE s.id = ? AND s.expires_at > ?
  ORDER BY m.turn, m.seq`;

export class InvalidCursorError extends Error {}

/** SessionStore on SQLite. Every statement is prepared once here; the request path only binds and steps. */
export function createSessionStore(db: SqliteDatabase): SessionStore {
  const selectLive = db.prepare<[string, number], SessionRow>('SELECT * FROM sessions WHERE id = ? AND expires_at > ?');
  const selectFromTurn = db.prepare<[string, number], MessageRow>(
    'SELECT turn, role, content, content_parts, tool_calls, tool_call_id, name FROM messages WHERE session_id = ? AND turn > ? ORDER BY turn, seq',
  );
  // The window in one statement: the live session's turn count bounds the range scan of its messages.
  // Raw rows (arrays, no per-row object with named keys): about a third faster on the request path.
  const selectWindow = db
    .prepare<[number, string, number], RawMessageRow>(WINDOW_SQL)
    .raw(true);
  // The common append: bump a live session and learn where its new messages go, in one statement.
  // RETURNING gives the values after the update: the turn's first seq is next_seq minus the messages added.
  const bumpLive = db.prepare<[string, number, number, number, string, number], { turns: number; next_seq: number }>(
    'UPDATE sessions SET profile = ?, updated_at = ?, expires_at = ?, turns = turns + 1, next_seq = next_seq + ? WHERE id = ? AND expires_at > ? RETURNING turns, next_seq',
  );
  const insertSession = db.prepare(
    'INSERT INTO sessions (id, profile, created_at, updated_at, expires_at, turns, next_seq) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const insertMessage = db.prepare(
    'INSERT INTO messages (session_id, seq, turn, role, content, content_parts, tool_calls, tool_call_id, name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
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
  const selectStale = db.prepare<[number, number], { id: string }>('SELECT id FROM sessions WHERE updated_at < ? LIMIT ?');

  const removeSession = (id: string): boolean => {
    deleteMessages.run(id);
    return deleteSession.run(id).changes > 0;
  };

  const insertMessages = (id: string, turn: number, firstSeq: number, messages: ChatMessage[], now: number): number => {
    let seq = firstSeq;
    for (const m of messages) {
      const parts = Array.isArray(m.content);
      const content = parts ? JSON.stringify(m.content) : typeof m.content === 'string' ? m.content : null;
      insertMessage.run(
        id,
        seq++,
        turn,
        m.role,
        content,
        parts ? 1 : 0,
        m.tool_calls && m.tool_calls.length > 0 ? JSON.stringify(m.tool_calls) : null,
        m.tool_call_id ?? null,
        m.name ?? null,
        now,
      );
    }
    return seq;
  };

  const appendTurn = db.transaction((id: string, profile: string, messages: ChatMessage[], ttlMs: number, now: number) => {
    const live = bumpLive.get(profile, now, now + ttlMs, messages.length, id, now);
    if (live) {
      insertMessages(id, live.turns, live.next_seq - messages.length, messages, now);
      return;
    }
    // New, or expired: an expired session was never served, and a new turn on its id starts afresh.
    removeSession(id);
    const next = insertMessages(id, 1, 0, messages, now);
    insertSession.run(id, profile, now, now, now + ttlMs, 1, next);
  });

  const deleteBatch = db.transaction((ids: string[]) => {
    let n = 0;
    for (const id of ids) if (removeSession(id)) n++;
    return n;
  });

  return {
    loadWindow(id, turns, now) {
      if (turns <= 0) return [];
      const rows = selectWindow.all(turns, id, now) as unknown as RawMessageRow[];
      const out: StoredMessage[] = new Array<StoredMessage>(rows.length);
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        out[i] = {
          turn: r[0],
          message: messageFrom(r[1], r[2], r[3], r[4], r[5], r[6]),
        };
      }
      return out;
    },
    appendTurn(id, profile, messages, ttlMs, now) {
      appendTurn(id, profile, messages, ttlMs, now);
    },
    get(id, now) {
      const session = selectLive.get(id, now);
      if (!session) return null;
      return { ...toInfo(session), messages: selectFromTurn.all(id, 0).map(toMessage) };
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
    pruneOlderThan(before) {
      let total = 0;
      for (;;) {
        const n = deleteBatch(selectStale.all(before, 500).map((r) => r.id));
        total += n;
        if (n < 500) return total;
      }
    },
  };
}
