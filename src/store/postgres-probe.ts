// What `cs-llm doctor` asks a PostgreSQL store before `up` starts a daemon on it: does it answer, which
// server, and is its schema one this cs-llm can use. Read-only: nothing is created or migrated here.

import { errorMessage } from '../core/errors.js';
import { openPool } from './postgres-db.js';
import { PG_SCHEMA_VERSION } from './postgres-schema.js';

export type PostgresProbe =
  { ok: true; serverVersion: string; schemaVersion: number | null; supported: boolean } | { ok: false; message: string };

export async function probePostgres(url: string, timeoutMs = 2000): Promise<PostgresProbe> {
  const db = openPool({ url, max: 1, connectMs: timeoutMs });
  try {
    const version = await db.query<{ server_version: string }>({ text: 'SHOW server_version', query_timeout: timeoutMs });
    // A new database has no cs_llm_schema yet (the daemon creates it at its first start).
    const exists = await db.query<{ t: string | null }>({
      text: "SELECT to_regclass('cs_llm_schema')::text AS t",
      query_timeout: timeoutMs,
    });
    const schemaVersion =
      exists.rows[0]?.t == null
        ? null
        : ((await db.query<{ v: number | null }>({ text: 'SELECT MAX(version) AS v FROM cs_llm_schema', query_timeout: timeoutMs })).rows[0]
            ?.v ?? null);
    return {
      ok: true,
      serverVersion: version.rows[0]?.server_version ?? 'unknown',
      schemaVersion,
      supported: schemaVersion === null || schemaVersion <= PG_SCHEMA_VERSION,
    };
  } catch (err) {
    return { ok: false, message: errorMessage(err) };
  } finally {
    await db.close().catch(() => undefined);
  }
}
