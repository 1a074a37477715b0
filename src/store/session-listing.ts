import { InvalidCursorError, type SessionStore } from './sessions.js';
import { toInfo, type SessionRow } from './session-rows.js';
import type { SqliteDatabase, Synchronous } from './database.js';
import { bucketOf } from './expiry-bucket.js';

// Listing sessions, newest expiry first, keyset-paged: one tenant's through the index sessions_by_tenant
// (tenant, expiry_bucket, id), every tenant's (an operator's view) through sessions_by_expiry (expiry_bucket,
// tenant, id). The indexes give the order of the buckets (expiry-bucket.ts); SQLite sorts each bucket's rows
// by the exact expiry as it reaches them ("TEMP B-TREE FOR RIGHT PART OF ORDER BY") and stops at the page's
// end, so a page costs the rows of the buckets it touches, not of the listing.

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
  // Parameters: the buckets from bucketOf(now) (the live ones) to the cursor's, then the exact bounds.
  const listFirst = db.prepare<[string, number, number, number, number], SessionRow>(
    `SELECT * FROM sessions WHERE tenant = ? AND expiry_bucket BETWEEN ? AND ? AND expires_at > ?
     ORDER BY expiry_bucket DESC, expires_at DESC, id DESC LIMIT ?`,
  );
  const listAfter = db.prepare<[string, number, number, number, number, number, string, number], SessionRow>(
    `SELECT * FROM sessions WHERE tenant = ? AND expiry_bucket BETWEEN ? AND ? AND expires_at > ?
       AND (expires_at < ? OR (expires_at = ? AND id < ?))
     ORDER BY expiry_bucket DESC, expires_at DESC, id DESC LIMIT ?`,
  );
  const listAllFirst = db.prepare<[number, number, number, number], SessionRow>(
    `SELECT * FROM sessions WHERE expiry_bucket BETWEEN ? AND ? AND expires_at > ?
     ORDER BY expiry_bucket DESC, expires_at DESC, tenant DESC, id DESC LIMIT ?`,
  );
  const listAllAfter = db.prepare<[number, number, number, number, string, string, number], SessionRow>(
    `SELECT * FROM sessions WHERE expiry_bucket BETWEEN ? AND ? AND expires_at > ? AND (expires_at, tenant, id) < (?, ?, ?)
     ORDER BY expiry_bucket DESC, expires_at DESC, tenant DESC, id DESC LIMIT ?`,
  );
  // A tenant's live sessions through sessions_by_tenant, counting stopping at the bound: the buckets after
  // now's from the index alone (all live), now's own bucket checked row by row.
  type Live = { tenant: string; bucket: number; now: number; atMost?: number };
  const countLive = db.prepare<[Live], { n: number }>(
    `SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM sessions WHERE tenant = @tenant AND expiry_bucket > @bucket LIMIT @atMost))
          + (SELECT COUNT(*) FROM (SELECT 1 FROM sessions WHERE tenant = @tenant AND expiry_bucket = @bucket AND expires_at > @now LIMIT @atMost)) AS n`,
  );
  // The first expiry: the smallest of the first bucket that holds a live session (that bucket's rows only).
  const firstExpiry = db.prepare<[Live], { at: number | null }>(
    `SELECT MIN(expires_at) AS at FROM sessions WHERE tenant = @tenant AND expires_at > @now AND expiry_bucket =
       (SELECT expiry_bucket FROM sessions WHERE tenant = @tenant AND expiry_bucket >= @bucket AND expires_at > @now
        ORDER BY expiry_bucket LIMIT 1)`,
  );
  const isLive = db.prepare<[string, string, number], { n: number }>(
    'SELECT EXISTS (SELECT 1 FROM sessions WHERE tenant = ? AND id = ? AND expires_at > ?) AS n',
  );
  const liveSessions: Listing['liveSessions'] = (tenant, id, now, atMost) => ({
    live: Math.min(atMost, countLive.get({ tenant, bucket: bucketOf(now), now, atMost })!.n),
    nextExpiry: firstExpiry.get({ tenant, bucket: bucketOf(now), now })!.at,
    exists: isLive.get(tenant, id, now)!.n === 1,
  });
  const list: Listing['list'] = ({ tenant, now, limit, cursor }) => {
    let rows: SessionRow[];
    const from = bucketOf(now);
    if (cursor) {
      const after = decodeCursor(cursor);
      if (!after || (tenant !== null && after.tenant !== tenant))
        throw new InvalidCursorError(`cursor "${cursor}" is not one this server gave out for this listing`);
      const to = bucketOf(after.expiresAt);
      rows =
        tenant === null
          ? listAllAfter.all(from, to, now, after.expiresAt, after.tenant, after.id, limit + 1)
          : listAfter.all(tenant, from, to, now, after.expiresAt, after.expiresAt, after.id, limit + 1);
    } else {
      rows =
        tenant === null
          ? listAllFirst.all(from, Number.MAX_SAFE_INTEGER, now, limit + 1)
          : listFirst.all(tenant, from, Number.MAX_SAFE_INTEGER, now, limit + 1);
    }
    const more = rows.length > limit;
    const page = more ? rows.slice(0, limit) : rows;
    return { sessions: page.map(toInfo), nextCursor: more ? encodeCursor(page[page.length - 1]!) : null };
  };
  return { list, liveSessions };
}
