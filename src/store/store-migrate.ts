// `cs-llm store migrate --from <sqlite file> --to postgres://...`: moving from one box to several. Every row
// of the SQLite store (brought to its current schema first) is copied as it is, in one PostgreSQL
// transaction: sessions, messages (encrypted ones stay encrypted: the contexts are the same), Responses
// records, keys, tenants' usage, the audit log with its chain, anchor and key starts. A target that already
// holds anything is refused unless `replace` empties it first. The audit chain is verified on the target
// afterwards (with the audit key file, when there is one).

import { existsSync } from 'node:fs';
import { EnvironmentError, UsageError } from '../core/errors.js';
import { readAuditKeyring } from './audit-key.js';
import type { ChainCheck } from './audit-verify.js';
import { openDatabase } from './database.js';
import { redactUrl } from './location.js';
import { migratePostgres, openPool } from './postgres-db.js';
import { openPostgresStore } from './postgres-store.js';

/** The tables in the order they are copied; `bytes`: columns that are BYTEA on PostgreSQL. */
const TABLES: ReadonlyArray<{ name: string; columns: string[]; bytes?: string[]; order: string }> = [
  {
    name: 'sessions',
    columns: ['tenant', 'id', 'profile', 'created_at', 'updated_at', 'expires_at', 'turns', 'next_seq', 'retain_until'],
    order: 'tenant, id',
  },
  {
    name: 'messages',
    columns: [
      'tenant',
      'session_id',
      'seq',
      'turn',
      'role',
      'content',
      'content_parts',
      'tool_calls',
      'tool_call_id',
      'name',
      'created_at',
      'key_id',
      'response',
    ],
    bytes: ['content', 'tool_calls', 'name'],
    order: 'tenant, session_id, turn, seq',
  },
  {
    name: 'response_settings',
    columns: ['tenant', 'session_id', 'turn', 'created_at', 'settings', 'key_id'],
    bytes: ['settings'],
    order: 'tenant, session_id, turn',
  },
  {
    name: 'threads',
    columns: ['tenant', 'id', 'kind', 'parent_id', 'parent_turn', 'created_at', 'metadata', 'key_id'],
    bytes: ['metadata'],
    order: 'tenant, id',
  },
  {
    name: 'api_keys',
    columns: ['id', 'name', 'prefix', 'hash', 'created_at', 'revoked_at', 'tenant', 'profiles', 'admin'],
    bytes: ['hash'],
    order: 'id',
  },
  { name: 'content_keys', columns: ['id', 'first_used_at', 'retired_at'], order: 'id' },
  {
    name: 'usage_daily',
    columns: [
      'day',
      'upstream',
      'model',
      'tenant',
      'key_id',
      'currency',
      'requests',
      'sessions',
      'prompt_tokens',
      'cached_tokens',
      'completion_tokens',
      'cost_nanos',
    ],
    order: 'day, upstream, model, tenant, key_id, currency',
  },
  { name: 'audit_chain', columns: ['id', 'from_seq', 'prev_hash', 'key_id', 'tag', 'created_at'], order: 'id' },
  { name: 'audit_anchor', columns: ['id', 'seq', 'hash', 'pruned_records', 'pruned_at', 'key_id', 'tag'], order: 'id' },
  {
    name: 'audit_log',
    columns: [
      'seq',
      'at',
      'key_id',
      'method',
      'route',
      'session_id',
      'upstream',
      'status',
      'outcome',
      'error_code',
      'prompt_tokens',
      'completion_tokens',
      'latency_ms',
      'upstream_ms',
      'prev_hash',
      'hash',
      'tenant',
    ],
    order: 'seq',
  },
];

const BATCH = 500;

export interface MigrateResult {
  /** Rows copied per table. */
  copied: Record<string, number>;
  /** The audit chain as verified on the target; keyFile null when there was no key file to verify with. */
  audit: ChainCheck;
  keyFile: string | null;
}

export async function migrateSqliteToPostgres(options: {
  from: string;
  to: string;
  /** Empty a target that holds rows already, instead of refusing. */
  replace?: boolean;
  /** The audit key file the chain is verified with (absent: verified without keys, as far as that goes). */
  auditKeyFile?: string;
  onTable?: (table: string, rows: number) => void;
}): Promise<MigrateResult> {
  const where = redactUrl(options.to);
  if (!existsSync(options.from))
    throw new UsageError(`${options.from} does not exist`, { next: 'Give the SQLite database file with --from.' });
  const sqlite = openDatabase({ file: options.from });
  const pg = openPool({ url: options.to, max: 2 });
  const copied: Record<string, number> = {};
  try {
    // A name an earlier build stored in clear in an encrypted row is text where PostgreSQL expects ciphertext.
    const clearNames = sqlite
      .prepare<[], { n: number }>("SELECT COUNT(*) AS n FROM messages WHERE key_id IS NOT NULL AND typeof(name) = 'text'")
      .get()!.n;
    if (clearNames > 0)
      throw new EnvironmentError(
        `${clearNames} encrypted message(s) in ${options.from} still have their name in clear (stored by an earlier build)`,
        {
          next: 'Run cs-llm store rotate-key on the SQLite file first (it encrypts those names), then migrate.',
        },
      );
    await migratePostgres(pg);
    await pg.tx(async (client) => {
      const held: string[] = [];
      for (const t of TABLES) {
        // The schema's own first row of audit_chain (an unsigned start) is not data.
        const sql =
          t.name === 'audit_chain'
            ? 'SELECT COUNT(*)::integer AS n FROM audit_chain WHERE tag IS NOT NULL'
            : `SELECT COUNT(*)::integer AS n FROM ${t.name}`;
        const n = (await client.query<{ n: number }>(sql)).rows[0]!.n;
        if (n > 0) held.push(`${t.name} ${n}`);
      }
      if (held.length > 0 && !options.replace)
        throw new EnvironmentError(`the PostgreSQL store at ${where} is not empty (${held.join(', ')} rows)`, {
          next: 'Migrate into an empty database, or pass --replace to delete what it holds first (every daemon on it must be stopped).',
        });
      // TRUNCATE fires no row triggers: the append-only rules stay for every other writer.
      await client.query(`TRUNCATE ${TABLES.map((t) => t.name).join(', ')}`);
      for (const t of TABLES) {
        const select = sqlite.prepare(`SELECT ${t.columns.join(', ')} FROM ${t.name} ORDER BY ${t.order}`).raw(true);
        const insert = (rows: unknown[][]) => {
          const values: unknown[] = [];
          const tuples = rows.map((row) => `(${row.map((v) => `$${values.push(v)}`).join(', ')})`);
          return client.query(`INSERT INTO ${t.name} (${t.columns.join(', ')}) VALUES ${tuples.join(', ')}`, values);
        };
        const bytesAt = (t.bytes ?? []).map((c) => t.columns.indexOf(c));
        let batch: unknown[][] = [];
        let n = 0;
        for (const raw of select.iterate() as IterableIterator<unknown[]>) {
          for (const i of bytesAt) if (typeof raw[i] === 'string') raw[i] = Buffer.from(raw[i] as string, 'utf8');
          batch.push(raw);
          if (batch.length === BATCH) {
            await insert(batch);
            n += batch.length;
            batch = [];
          }
        }
        if (batch.length > 0) await insert(batch);
        n += batch.length;
        copied[t.name] = n;
        options.onTable?.(t.name, n);
      }
      await client.query(
        "SELECT setval(pg_get_serial_sequence('audit_chain', 'id'), COALESCE((SELECT MAX(id) FROM audit_chain), 0) + 1, false)",
      );
    });
  } finally {
    sqlite.close();
    await pg.close();
  }
  const store = await openPostgresStore({ file: options.to });
  try {
    const keyFile = options.auditKeyFile && existsSync(options.auditKeyFile) ? options.auditKeyFile : null;
    const audit = await store.audit.verify(keyFile ? readAuditKeyring(keyFile) : null);
    return { copied, audit, keyFile };
  } finally {
    await store.close();
  }
}
