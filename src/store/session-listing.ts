import { InvalidCursorError, type SessionStore } from './sessions.js';
import { toInfo, type SessionRow } from './session-rows.js';
import type { SqliteDatabase, Synchronous } from './database.js';

// Listing sessions, newest expiry first, keyset-paged (O(log n) per page at any size): one tenant's through
// the index sessions_by_tenant (tenant, expires_at, id), every tenant's (an operator's view) through
// sessions_by_expiry (expires_at, tenant, id).

// A listing's cursor: the last row's (expires_at, tenant, id). A tenant name has no ':', a session id may.
export function encodeCursor(row: { expires_at: number; tenant: string; id: string }): string {
  return Buffer.from(`${row.expires_at}:${row.tenant}:${row.id}`, 'utf8').toString('base64url');
}

export function decodeCursor(cursor: string): { expiresAt: number; tenant: string; id: string } | null {
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  const first = text.indexOf(':');
  const second = first < 1 ? -1 : text.indexOf(':', first + 1);
  if (second < 0) return null;
  const expiresAt = Number(text.slice(0, first));
  if (!Number.isInteger(expiresAt)) return null;
  return { expiresAt, tenant: text.slice(first + 1, second), id: text.slice(second + 1) };
}

type Listing = Pick<Synchronous<SessionStore>, 'list' | 'liveSessions'>;

/** SessionStore.list and liveSessions on SQLite. */
export function createSessionListing(db: SqliteDatabase): Listing {
  const listFirst = db.prepare<[string, number, number], SessionRow>(
    'SELECT * FROM sessions WHERE tenant = ? AND expires_at > ? ORDER BY expires_at DESC, id DESC LIMIT ?',
  );
  const listAfter = db.prepare<[string, number, number, number, string, number], SessionRow>(
    'SELECT * FROM sessions WHERE tenant = ? AND expires_at > ? AND (expires_at < ? OR (expires_at = ? AND id < ?)) ORDER BY expires_at DESC, id DESC LIMIT ?',
  );
  const listAllFirst = db.prepare<[number, number], SessionRow>(
    'SELECT * FROM sessions WHERE expires_at > ? ORDER BY expires_at DESC, tenant DESC, id DESC LIMIT ?',
  );
  const listAllAfter = db.prepare<[number, number, string, string, number], SessionRow>(
    'SELECT * FROM sessions WHERE expires_at > ? AND (expires_at, tenant, id) < (?, ?, ?) ORDER BY expires_at DESC, tenant DESC, id DESC LIMIT ?',
  );
  // A tenant's live sessions through sessions_by_tenant: counting stops at the bound, the first expiry is the
  // range's first entry, existence a primary-key search.
  const countLive = db.prepare<[string, number, number], { n: number }>(
    'SELECT COUNT(*) AS n FROM (SELECT 1 FROM sessions WHERE tenant = ? AND expires_at > ? LIMIT ?)',
  );
  const firstExpiry = db.prepare<[string, number], { at: number | null }>(
    'SELECT MIN(expires_at) AS at FROM sessions WHERE tenant = ? AND expires_at > ?',
  );
  const isLive = db.prepare<[string, string, number], { n: number }>(
    'SELECT EXISTS (SELECT 1 FROM sessions WHERE tenant = ? AND id = ? AND expires_at > ?) AS n',
  );
  const liveSessions: Listing['liveSessions'] = (tenant, id, now, atMost) => ({
    live: countLive.get(tenant, now, atMost)!.n,
    nextExpiry: firstExpiry.get(tenant, now)!.at,
    exists: isLive.get(tenant, id, now)!.n === 1,
  });
  const list: Listing['list'] = ({ tenant, now, limit, cursor }) => {
    let rows: SessionRow[];
    if (cursor) {
      const after = decodeCursor(cursor);
      if (!after || (tenant !== null && after.tenant !== tenant))
        throw new InvalidCursorError(`cursor "${cursor}" is not one this server gave out for this listing`);
      rows =
        tenant === null
          ? listAllAfter.all(now, after.expiresAt, after.tenant, after.id, limit + 1)
          : listAfter.all(tenant, now, after.expiresAt, after.expiresAt, after.id, limit + 1);
    } else {
      rows = tenant === null ? listAllFirst.all(now, limit + 1) : listFirst.all(tenant, now, limit + 1);
    }
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { sessions: page.map(toInfo), nextCursor: more ? encodeCursor(page[page.length - 1]!) : null };
  };
  return { list, liveSessions };
}
