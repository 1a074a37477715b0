// A PostgreSQL store filled to a size in one go, for `npm run bench` (as seed.ts does for SQLite): sessions of
// `turnsEach` turns of the same two messages, made by the server itself (generate_series), so 100,000
// sessions take seconds, not a turn at a time over the network.

import { DEFAULT_TENANT } from '../core/tenant.js';
import { migratePostgres, openPool } from './postgres-db.js';

export async function seedPostgresStore(
  url: string,
  seed: { sessions: number; turnsEach: number; turn: (i: number) => Array<{ role: string; content: string }>; ttlMs: number; now: number },
): Promise<void> {
  const db = openPool({ url, max: 1 });
  try {
    await migratePostgres(db);
    const [user, assistant] = seed.turn(0);
    const perTurn = 2;
    await db.query(
      `INSERT INTO sessions (tenant, id, profile, created_at, updated_at, expires_at, turns, next_seq, retain_until)
       SELECT $1, 'session-' || s, 'default', $2, $2, $3, $4, $4 * ${perTurn}, NULL FROM generate_series(0, $5 - 1) AS s`,
      [DEFAULT_TENANT, seed.now, seed.now + seed.ttlMs, seed.turnsEach, seed.sessions],
    );
    await db.query(
      `INSERT INTO messages (tenant, session_id, seq, turn, role, content, content_parts, tool_calls, tool_call_id, name, created_at, key_id, response)
       SELECT $1, 'session-' || s, (t - 1) * ${perTurn} + m, t, CASE WHEN m = 0 THEN 'user' ELSE 'assistant' END,
              CASE WHEN m = 0 THEN convert_to($2, 'UTF8') ELSE convert_to($3, 'UTF8') END, 0, NULL, NULL, NULL, $4, NULL, NULL
       FROM generate_series(0, $5 - 1) AS s, generate_series(1, $6) AS t, generate_series(0, 1) AS m`,
      [DEFAULT_TENANT, user!.content, assistant!.content, seed.now, seed.sessions, seed.turnsEach],
    );
    await db.query('VACUUM ANALYZE sessions');
    await db.query('VACUUM ANALYZE messages');
  } finally {
    await db.close();
  }
}
