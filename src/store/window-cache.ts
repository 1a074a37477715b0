// The history windows of recently used sessions, kept in memory as the rows the window query returned, so a
// session's next turn reads its window without that query (about 35 us for 10 turns, the largest part of a
// turn's reads; #21). Rows, not messages: each turn still builds its own message objects from them (nothing
// downstream can change what is kept), and rows of an encrypted store go through the decryption cache as ever.
//
// Never a stale window: every read checks the session's row (live, and the same turn count as the window
// kept; a turn that was rolled back, an expiry or a deletion shows there) and PRAGMA data_version (any commit
// by another connection, another process above all, drops everything). Writes of this connection that change
// a window's rows without changing the turn count (a session deleted and started again, a response or an item
// deleted through the Responses API) drop the session's window (forget), and a failed append drops it too.

import { sessionKey } from '../core/tenant.js';
import type { SqliteDatabase } from './database.js';
import type { RawMessageRow } from './session-rows.js';

/**
 * What is kept at most (least recently used dropped first): so many sessions' windows, a few KiB each in
 * a customer-service chat, and so many bytes of their rows in all, so that long histories or large messages
 * cannot grow the daemon's memory past it (a window over the whole budget is not kept).
 */
export interface WindowLimits {
  windows: number;
  bytes: number;
}
const LIMITS: WindowLimits = { windows: 1024, bytes: 8 * 1024 * 1024 };

/** A row's size as counted against the budget: its text and bytes, and about what the row's array costs. */
const ROW_OVERHEAD = 96;
function sizeOf(rows: readonly RawMessageRow[]): number {
  let bytes = 0;
  for (const row of rows) {
    bytes += ROW_OVERHEAD;
    for (const value of row) {
      if (typeof value === 'string') bytes += value.length;
      else if (value instanceof Uint8Array) bytes += value.byteLength;
    }
  }
  return bytes;
}

interface Kept {
  /** The session's turn count the rows are the window of. */
  turns: number;
  /** How many turns back the rows reach (the largest window asked for). */
  depth: number;
  rows: RawMessageRow[];
  /** sizeOf(rows) */
  bytes: number;
}

export interface WindowCache {
  /** The rows of the last `turns` turns of a live session, or null when they are not known here. */
  rows(tenant: string, id: string, turns: number, now: number): RawMessageRow[] | null;
  /** Keeps what the window query returned for `turns` turns (each row with the session's turn count last). */
  loaded(tenant: string, id: string, turns: number, rows: RawMessageRow[], sessionTurns: number): void;
  /** A turn was appended (inside its transaction): the session is now at `turn` turns with these rows added. */
  appended(tenant: string, id: string, turn: number, rows: RawMessageRow[]): void;
  forget(tenant: string, id: string): void;
}

export function createWindowCache(db: SqliteDatabase, limits: WindowLimits = LIMITS): WindowCache {
  // One statement, so one read transaction (its locks are most of a read's cost): the connection's view of
  // commits by others, and the session's turn count if it is live.
  const check = db
    .prepare<[string, string, number], [number, number | null]>(
      'SELECT d.data_version, s.turns FROM pragma_data_version AS d LEFT JOIN sessions AS s ON s.tenant = ? AND s.id = ? AND s.expires_at > ?',
    )
    .raw(true);
  let version = check.get('', '', 0)![0];
  const kept = new Map<string, Kept>();
  let keptBytes = 0;
  const drop = (key: string): void => {
    const k = kept.get(key);
    if (!k) return;
    keptBytes -= k.bytes;
    kept.delete(key);
  };
  // Least recently used first: a Map iterates in insertion order, and a window read is inserted again.
  const keep = (key: string, k: Kept): void => {
    drop(key);
    if (k.bytes > limits.bytes) return;
    while (kept.size > 0 && (kept.size >= limits.windows || keptBytes + k.bytes > limits.bytes)) drop(kept.keys().next().value as string);
    kept.set(key, k);
    keptBytes += k.bytes;
  };
  return {
    rows(tenant, id, turns, now) {
      const key = sessionKey(tenant, id);
      const k = kept.get(key);
      if (!k || turns > k.depth) return null;
      const [v, live] = check.get(tenant, id, now)!;
      if (v !== version) {
        // Another connection wrote (since this one last looked): nothing kept can be trusted.
        version = v;
        kept.clear();
        keptBytes = 0;
        return null;
      }
      // Expired or gone: no window, as the query would say.
      if (live === null) return [];
      if (live !== k.turns) {
        drop(key);
        return null;
      }
      kept.delete(key);
      kept.set(key, k);
      const from = k.turns - turns;
      return k.rows[0] !== undefined && k.rows[0][0] > from ? k.rows : k.rows.filter((r) => r[0] > from);
    },
    loaded(tenant, id, turns, rows, sessionTurns) {
      keep(sessionKey(tenant, id), { turns: sessionTurns, depth: turns, rows, bytes: sizeOf(rows) });
    },
    appended(tenant, id, turn, rows) {
      const key = sessionKey(tenant, id);
      const k = kept.get(key);
      if (!k) return;
      if (k.turns !== turn - 1) {
        drop(key);
        return;
      }
      const from = turn - k.depth;
      const next = [...k.rows.filter((r) => r[0] > from), ...rows];
      keep(key, { turns: turn, depth: k.depth, rows: next, bytes: sizeOf(next) });
    },
    forget(tenant, id) {
      drop(sessionKey(tenant, id));
    },
  };
}
