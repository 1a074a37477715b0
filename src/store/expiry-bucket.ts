// A session's expiry slides with every turn, and an index entry that moved on every turn cost each turn a
// page write per index (#21). So the two expiry indexes (sessions_by_expiry, sessions_by_tenant) hold
// expiry_bucket, the minute of the exact expires_at that the row keeps: a turn moves them only when its
// expiry crosses into another minute. The bucket is always exactly expires_at's (a trigger on SQLite, a
// generated column on PostgreSQL keep it so), and every range read of the indexes checks the exact expiry:
// - live (expires_at > now): bucket >= bucketOf(now); the buckets above it hold only live sessions,
//   bucketOf(now) itself both kinds;
// - expired (expires_at <= now): bucket <= bucketOf(now);
// - in expiry order: bucket order, then expires_at within a bucket (a sort of that bucket's rows only).

/** The bucket's width. The migrations that made the column (SQLite 9, PostgreSQL 4) spell it out as 60000. */
export const EXPIRY_BUCKET_MS = 60_000;

/**
 * The bucket of an expiry (milliseconds since the epoch, as stored). Truncated as SQLite's and PostgreSQL's
 * integer division truncates, so that the readers' bucket of now is the schema's for any time: what the
 * readers rely on is only that the bucket never decreases as the time grows.
 */
export const bucketOf = (ms: number): number => Math.trunc(ms / EXPIRY_BUCKET_MS);
