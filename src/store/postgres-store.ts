// The Store on PostgreSQL (store.url, CS_LLM_STORE_URL or --db postgres://...): several daemons share one
// database. Everything the SQLite store keeps is here (postgres-schema.ts), through node-postgres' pool;
// a call that cannot reach the server rejects with StoreUnavailableError (the daemon's 503 store_unavailable)
// within the pool's connect timeout, and the pool reconnects by itself once the server is back.

import type { ContentCipher } from './crypto.js';
import type { OpenStoreOptions, Store } from './interface.js';
import { matchKey, newKey, prefixOf, toInfo, type KeyRow, type KeyStore } from './keys.js';
import { startMaintenance } from './maintenance.js';
import { createPgAudit } from './postgres-audit.js';
import { redactUrl } from './location.js';
import { migratePostgres, openPool, REQUEST_QUERY_MS, type PgDatabase } from './postgres-db.js';
import { createPgResponses } from './postgres-responses.js';
import { createPgScrubber, vacuumFull } from './postgres-scrub.js';
import { createPgSessions } from './postgres-sessions.js';
import { rotatePgContentKey } from './postgres-rotation.js';
import { missingKeyError } from './sessions.js';
import type { UsageRow, UsageStore } from './usage.js';
import { bucketOf } from './expiry-bucket.js';

const NANOS = 1e9;

/** KeyStore on PostgreSQL: the SQLite one's rules (keys.ts), its rows shared by every daemon. */
function createPgKeys(db: PgDatabase): KeyStore {
  let generation = 0;
  return {
    get generation() {
      return generation;
    },
    async create(name, now, scope = {}) {
      const { key, row } = newKey(name, now, scope);
      await db.query(
        'INSERT INTO api_keys (id, name, prefix, hash, tenant, profiles, admin, created_at, revoked_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)',
        [row.id, row.name, row.prefix, row.hash, row.tenant, row.profiles, row.admin, row.created_at],
      );
      generation++;
      return { key, info: toInfo(row) };
    },
    list: async () => (await db.query<KeyRow>('SELECT * FROM api_keys ORDER BY created_at, id')).rows.map(toInfo),
    async revoke(idOrPrefix, now) {
      const rows = (await db.query<KeyRow>('SELECT * FROM api_keys WHERE (id = $1 OR prefix = $1) AND revoked_at IS NULL', [idOrPrefix]))
        .rows;
      if (rows.length !== 1) return null;
      await db.query('UPDATE api_keys SET revoked_at = $1 WHERE id = $2', [now, rows[0]!.id]);
      generation++;
      return { ...toInfo(rows[0]!), revokedAt: now };
    },
    hasActiveKeys: async () =>
      ((await db.query({ text: 'SELECT 1 FROM api_keys WHERE revoked_at IS NULL LIMIT 1', query_timeout: REQUEST_QUERY_MS })).rowCount ??
        0) > 0,
    async verify(key) {
      const prefix = prefixOf(key);
      if (prefix === null) return null;
      const rows = await db.query<KeyRow>({
        name: 'cs_llm_key',
        text: 'SELECT * FROM api_keys WHERE prefix = $1 AND revoked_at IS NULL',
        query_timeout: REQUEST_QUERY_MS,
        values: [prefix],
      });
      return matchKey(key, rows.rows);
    },
  };
}

function createPgUsage(db: PgDatabase): UsageStore {
  return {
    async add(rows) {
      if (rows.length === 0) return;
      const col = <K extends keyof UsageRow>(k: K) => rows.map((r) => r[k]);
      await db.query(
        `INSERT INTO usage_daily (day, upstream, model, tenant, key_id, currency, requests, sessions, prompt_tokens, cached_tokens,
                                  completion_tokens, cost_nanos)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::bigint[],
                              $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
         ON CONFLICT (day, upstream, model, tenant, key_id, currency) DO UPDATE SET
           requests = usage_daily.requests + excluded.requests, sessions = usage_daily.sessions + excluded.sessions,
           prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens, cached_tokens = usage_daily.cached_tokens + excluded.cached_tokens,
           completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens, cost_nanos = usage_daily.cost_nanos + excluded.cost_nanos`,
        [
          col('day'),
          col('upstream'),
          col('model'),
          col('tenant'),
          col('keyId'),
          col('currency'),
          col('requests'),
          col('sessions'),
          col('promptTokens'),
          col('cachedTokens'),
          col('completionTokens'),
          rows.map((r) => Math.round(r.cost * NANOS)),
        ],
      );
    },
    async query({ fromDay, toDay }) {
      const rows = (
        await db.query<Record<string, number | string>>('SELECT * FROM usage_daily WHERE day >= $1 AND day <= $2 ORDER BY day', [
          fromDay,
          toDay ?? '9999-12-31',
        ])
      ).rows;
      return rows.map((s) => ({
        day: s.day as string,
        upstream: s.upstream as string,
        model: s.model as string,
        tenant: s.tenant as string,
        keyId: s.key_id as string,
        currency: s.currency as string,
        requests: s.requests as number,
        sessions: s.sessions as number,
        promptTokens: s.prompt_tokens as number,
        cachedTokens: s.cached_tokens as number,
        completionTokens: s.completion_tokens as number,
        cost: (s.cost_nanos as number) / NANOS,
      }));
    },
  };
}

/** Opens the store at a postgres:// URL, with the schema migrated (once, whoever starts first). */
export async function openPostgresStore(options: OpenStoreOptions): Promise<Store> {
  const db = openPool({ url: options.file, max: options.poolSize ?? 10 });
  try {
    await migratePostgres(db);
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  const protection = options.protection ?? {};
  const scrubber = createPgScrubber(db, protection.onScrubError);
  const sessions = await createPgSessions(db, scrubber, protection);
  const responses = createPgResponses(db, sessions, scrubber, protection);
  const audit = createPgAudit(db);
  const keyring: ContentCipher[] = [...(protection.readKeys ?? []), ...(protection.cipher ? [protection.cipher] : [])];
  const count = async (sql: string, values: unknown[] = []) => (await db.query<{ n: number }>(sql, values)).rows[0]!.n;
  let closed = false;
  return {
    file: redactUrl(options.file),
    sessions,
    responses,
    keys: createPgKeys(db),
    audit,
    usage: createPgUsage(db),
    maintenance: {
      start: (maintenanceOptions) =>
        startMaintenance(
          null,
          { sessions, pruneAudit: (ring, before, now, limit) => audit.prune(ring, before, now, limit) },
          {
            ...maintenanceOptions,
            file: options.file,
          },
        ),
      scrub: (timeoutMs) => scrubber.request(timeoutMs),
      rewrite: async (timeoutMs) => {
        await vacuumFull(db);
        return scrubber.request(timeoutMs);
      },
      rotateKey: async ({ to, from, batch, signal }) => {
        const old = from ?? [...keyring];
        await sessions.encryptWith(to);
        keyring.push(to);
        return rotatePgContentKey(db, {
          to,
          from: old,
          scrub: () => scrubber.request(10_000),
          ...(batch ? { batch } : {}),
          ...(signal ? { signal } : {}),
        });
      },
      async requireContentKeys(now = Date.now()) {
        const cipher = protection.cipher ?? null;
        for (const { id } of (await db.query<{ id: string }>('SELECT id FROM content_keys WHERE retired_at IS NULL')).rows) {
          if (cipher && id === cipher.keyId) continue;
          const used = await db.query(
            `SELECT 1 WHERE EXISTS (SELECT 1 FROM messages WHERE key_id = $1) OR EXISTS (SELECT 1 FROM response_settings WHERE key_id = $1)
               OR EXISTS (SELECT 1 FROM threads WHERE key_id = $1)`,
            [id],
          );
          if ((used.rowCount ?? 0) > 0) throw missingKeyError(id, cipher);
          await db.query('UPDATE content_keys SET retired_at = $1 WHERE id = $2', [now, id]);
        }
      },
    },
    stats: {
      sessionCounts: async (now) => ({
        // The buckets after now's hold only live sessions; now's own is checked row by row (expiry-bucket.ts).
        live: await count(
          `SELECT (SELECT COUNT(*) FROM sessions WHERE expiry_bucket > $1)
                + (SELECT COUNT(*) FROM sessions WHERE expiry_bucket = $1 AND expires_at > $2) AS n`,
          [bucketOf(now), now],
        ),
        stored: await count('SELECT COUNT(*)::bigint AS n FROM sessions'),
      }),
      messageCount: () => count('SELECT COUNT(*)::bigint AS n FROM messages'),
      // SQLite's lock waits; PostgreSQL's row and advisory locks wait inside the server.
      lockWaits: () => Promise.resolve({ waiting: 0, waits: 0, timeouts: 0 }),
    },
    // Readiness answers within a second, however the server fails.
    ping: async () => {
      await db.query({ text: 'SELECT 1', query_timeout: 1000 });
    },
    async close() {
      if (closed) return;
      closed = true;
      await audit.drain();
      scrubber.close();
      await db.close();
    },
  };
}
