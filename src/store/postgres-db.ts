// The PostgreSQL connection pool (node-postgres), its failures turned into StoreUnavailableError, transactions,
// and the schema brought up to date once under an advisory lock (several daemons starting together migrate
// once; the others wait and find it done).

import pg from 'pg';
import { ConfigError, errorMessage } from '../core/errors.js';
import { StoreUnavailableError } from './interface.js';
import { redactUrl } from './location.js';
import { LOCK_SPACE, MIGRATE_LOCK, PG_MIGRATIONS, PG_SCHEMA_VERSION } from './postgres-schema.js';

/** A pooled connection in a transaction, or the pool: what the helpers that run SQL take. */
export interface PgQueryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

export { AUDIT_LOCK, LOCK_SPACE, MIGRATE_LOCK } from './postgres-schema.js';
/**
 * The longest a request's query waits for its answer (a server that stopped answering without closing the
 * connection: a network partition): then it fails as store_unavailable and its connection is dropped.
 */
export const REQUEST_QUERY_MS = 5000;

/** BIGINT columns hold ms times and counters well inside 2^53: numbers, not the strings pg gives by default. */
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === 20 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface PgOptions {
  url: string;
  /** Connections in the pool (default 10). */
  max?: number;
  /** How long a new connection may take before the call fails with store_unavailable (default 1000 ms). */
  connectMs?: number;
}

/** Errors of the connection itself (refused, cut, the server shutting down), as against a query's own. */
const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EPIPE', 'EAI_AGAIN']);
export function isConnectionError(err: unknown): boolean {
  const code = String((err as { code?: unknown }).code ?? '');
  if (CONNECTION_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|not queryable|Query read timeout/i.test(
    errorMessage(err),
  );
}

export function unavailable(url: string, err: unknown): StoreUnavailableError {
  return new StoreUnavailableError(`the PostgreSQL store at ${redactUrl(url)} is not reachable (${errorMessage(err)})`, {
    next: 'Check that PostgreSQL is running and reachable from this host; the daemon reconnects by itself once it is.',
    cause: err,
  });
}

export interface PgDatabase {
  pool: pg.Pool;
  url: string;
  /** A query on any pooled connection; connection failures reject with StoreUnavailableError. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    // query_timeout: node-postgres reads it per query too (its types list it for the client only).
    config: ((pg.QueryConfig | pg.QueryArrayConfig) & { query_timeout?: number }) | string,
    values?: unknown[],
  ): Promise<pg.QueryResult<R>>;
  /** Runs fn in one transaction on one connection (READ COMMITTED); rolled back when it throws. */
  tx<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export function openPool(options: PgOptions): PgDatabase {
  const { url } = options;
  const pool = new pg.Pool({
    connectionString: url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectMs ?? 1000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    types,
    application_name: 'cs-llm',
  });
  // An idle connection the server closed (a restart): the pool drops it and opens another when asked.
  pool.on('error', () => undefined);
  const wrap = (err: unknown): unknown => (isConnectionError(err) ? unavailable(url, err) : err);
  return {
    pool,
    url,
    query: async (config, values) => {
      try {
        return await pool.query(config as pg.QueryConfig, values);
      } catch (err) {
        throw wrap(err);
      }
    },
    async tx(fn) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw wrap(err);
      }
      let broken = false;
      // A checked-out client has no listener of the pool's: a server that ends the connection between two
      // statements of this transaction (a restart, pg_terminate_backend) would otherwise be an uncaught
      // 'error' event that ends the process. The next statement fails with it instead.
      const onError = () => (broken = true);
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        broken = isConnectionError(err);
        if (!broken) await client.query('ROLLBACK').catch(() => (broken = true));
        throw wrap(err);
      } finally {
        client.removeListener('error', onError);
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/** Brings the schema up to PG_SCHEMA_VERSION, once, under an advisory lock; refuses a newer one. */
export async function migratePostgres(db: PgDatabase): Promise<{ from: number; to: number }> {
  return db.tx(async (client) => {
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [LOCK_SPACE, MIGRATE_LOCK]);
    await client.query('CREATE TABLE IF NOT EXISTS cs_llm_schema (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)');
    const from = (await client.query<{ v: number | null }>('SELECT MAX(version) AS v FROM cs_llm_schema')).rows[0]?.v ?? 0;
    if (from > PG_SCHEMA_VERSION) {
      throw new ConfigError(
        `the PostgreSQL store at ${redactUrl(db.url)} has schema version ${from}, newer than this cs-llm understands (${PG_SCHEMA_VERSION})`,
        { next: 'Upgrade cs-llm on this host to the version the other daemons run.' },
      );
    }
    for (const m of PG_MIGRATIONS) {
      if (m.version <= from) continue;
      await client.query(m.sql);
      await client.query('INSERT INTO cs_llm_schema (version, applied_at) VALUES ($1, $2)', [m.version, Date.now()]);
    }
    return { from, to: PG_SCHEMA_VERSION };
  });
}

/** Text of a BYTEA value stored in clear (key_id NULL). */
export const utf8 = (value: Buffer | null): string | null => (value === null ? null : value.toString('utf8'));
/** A text for a BYTEA column. */
export const bytes = (text: string | null): Buffer | null => (text === null ? null : Buffer.from(text, 'utf8'));
