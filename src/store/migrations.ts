import type { Database } from 'better-sqlite3';
import { ConfigError } from '../core/errors.js';

/**
 * Versioned schema changes, applied in order inside one transaction each. The version lives in SQLite's own
 * `PRAGMA user_version`, so there is no extra table to keep in step. Append new migrations; never edit one
 * that has shipped.
 */
export const MIGRATIONS: ReadonlyArray<{ version: number; description: string; sql: string }> = [
  {
    version: 1,
    description: 'sessions, messages, api keys',
    sql: `
      -- Small rows keyed by a text id: WITHOUT ROWID keeps them in the primary-key b-tree itself.
      CREATE TABLE sessions (
        id          TEXT PRIMARY KEY,
        profile     TEXT NOT NULL,
        created_at  INTEGER NOT NULL,
        updated_at  INTEGER NOT NULL,
        expires_at  INTEGER NOT NULL,
        turns       INTEGER NOT NULL DEFAULT 0,
        next_seq    INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      -- One secondary index only: every turn rewrites expires_at, and each index costs a page write per turn.
      -- It serves the sweeper and the listing (most recently renewed first); pruning by age scans instead.
      CREATE INDEX sessions_by_expiry ON sessions (expires_at, id);

      -- One row per message. turn groups the messages stored by one request (the new messages and the
      -- reply); seq orders messages within a session. The unique index (session_id, turn, seq) is in seq
      -- order too (turn only grows with seq), so both "the last N turns" and "the whole session in order"
      -- are one index range scan: O(log n + k) at any table size.
      CREATE TABLE messages (
        session_id    TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        turn          INTEGER NOT NULL,
        role          TEXT NOT NULL,
        content       TEXT,
        content_parts INTEGER NOT NULL DEFAULT 0,
        tool_calls    TEXT,
        tool_call_id  TEXT,
        name          TEXT,
        created_at    INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX messages_by_session ON messages (session_id, turn, seq);

      CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        prefix      TEXT NOT NULL,
        hash        BLOB NOT NULL,
        created_at  INTEGER NOT NULL,
        revoked_at  INTEGER
      ) WITHOUT ROWID;
      CREATE INDEX api_keys_by_prefix ON api_keys (prefix);
    `,
  },
  {
    version: 2,
    description: 'encrypted message contents (key id per row), append-only audit log',
    sql: `
      -- NULL: content and tool_calls are plain text; else the id of the key that encrypted them (AES-256-GCM).
      ALTER TABLE messages ADD COLUMN key_id TEXT;
      -- Every key that ever encrypted a row, so opening without it fails with a clear error, not garbage.
      CREATE TABLE content_keys (
        id            TEXT PRIMARY KEY,
        first_used_at INTEGER NOT NULL,
        retired_at    INTEGER
      ) WITHOUT ROWID;

      -- One row per API request: who (key prefix), what, how it went. Never message contents. Each row holds
      -- the hash of the one before it (a chain that verify walks); triggers refuse UPDATE and DELETE.
      CREATE TABLE audit_log (
        seq               INTEGER PRIMARY KEY,
        at                INTEGER NOT NULL,
        key_id            TEXT,
        method            TEXT NOT NULL,
        route             TEXT NOT NULL,
        session_id        TEXT,
        upstream          TEXT,
        status            INTEGER NOT NULL,
        outcome           TEXT NOT NULL,
        error_code        TEXT,
        prompt_tokens     INTEGER,
        completion_tokens INTEGER,
        latency_ms        REAL NOT NULL,
        upstream_ms       REAL NOT NULL,
        prev_hash         TEXT NOT NULL,
        hash              TEXT NOT NULL
      );
      CREATE INDEX audit_by_time ON audit_log (at);
      CREATE INDEX audit_by_session ON audit_log (session_id) WHERE session_id IS NOT NULL;
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    `,
  },
  {
    version: 3,
    description: 'audit log retention: the head of the chain may be pruned behind an anchor',
    sql: `
      -- The last pruned record's seq and hash: the chain is verified from here, and new records extend it.
      -- One row, which only moves forward and cannot be removed.
      CREATE TABLE audit_anchor (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        seq             INTEGER NOT NULL,
        hash            TEXT NOT NULL,
        pruned_records  INTEGER NOT NULL,
        pruned_at       INTEGER NOT NULL
      );
      CREATE TRIGGER audit_anchor_forward BEFORE UPDATE ON audit_anchor WHEN NEW.seq < OLD.seq
        BEGIN SELECT RAISE(ABORT, 'the audit anchor only moves forward'); END;
      CREATE TRIGGER audit_anchor_no_delete BEFORE DELETE ON audit_anchor
        BEGIN SELECT RAISE(ABORT, 'the audit anchor cannot be removed'); END;
      -- Records may be deleted only at or before the anchor (retention); any other delete is refused.
      DROP TRIGGER audit_log_no_delete;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        WHEN OLD.seq > COALESCE((SELECT seq FROM audit_anchor WHERE id = 1), 0)
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: only records up to the retention anchor may be pruned'); END;
    `,
  },
  {
    version: 4,
    description: 'audit chain keyed (HMAC-SHA-256 under a key outside the database) from the next record on',
    sql: `
      -- Where each audit key's part of the chain starts: the first record it chains and the hash it chains
      -- from, signed with that key (tag) so the start cannot be moved without it. The records before the first
      -- row keep their plain SHA-256 hashes. This first row starts after the last record (or the anchor) and
      -- is signed by the first process that uses the key on this database (src/store/audit-chain.ts).
      CREATE TABLE audit_chain (
        id          INTEGER PRIMARY KEY,
        from_seq    INTEGER NOT NULL,
        prev_hash   TEXT NOT NULL,
        key_id      TEXT,
        tag         TEXT,
        created_at  INTEGER NOT NULL
      );
      INSERT INTO audit_chain (from_seq, prev_hash, created_at) VALUES (
        COALESCE((SELECT MAX(seq) FROM audit_log), (SELECT seq FROM audit_anchor WHERE id = 1), 0) + 1,
        COALESCE(
          (SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1),
          (SELECT hash FROM audit_anchor WHERE id = 1),
          '0000000000000000000000000000000000000000000000000000000000000000'
        ),
        CAST(strftime('%s', 'now') AS INTEGER) * 1000
      );
      -- Rows are written once; the migration's row gets its key and signature once.
      CREATE TRIGGER audit_chain_write_once BEFORE UPDATE ON audit_chain
        WHEN OLD.tag IS NOT NULL OR NEW.from_seq IS NOT OLD.from_seq OR NEW.prev_hash IS NOT OLD.prev_hash
        BEGIN SELECT RAISE(ABORT, 'the audit chain''s key records are written once'); END;
      CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
        BEGIN SELECT RAISE(ABORT, 'the audit chain''s key records cannot be removed'); END;
      -- The anchor is signed with the audit key too (moving it to delete records needs the key).
      ALTER TABLE audit_anchor ADD COLUMN key_id TEXT;
      ALTER TABLE audit_anchor ADD COLUMN tag TEXT;
    `,
  },
  {
    version: 5,
    description: "a session's retention cap, which only shrinks when it switches profiles",
    sql: `
      -- The earliest first turn + retention of every profile the session has used (NULL: none had one). Kept
      -- apart from expires_at, which slides with each turn, so that a turn on a profile that keeps sessions
      -- longer can never lift a shorter cap the session already had.
      ALTER TABLE sessions ADD COLUMN retain_until INTEGER;
    `,
  },
  {
    version: 6,
    description: 'usage and cost aggregates per day, upstream, model, tenant, key and currency',
    sql: `
      -- One row per combination and UTC day, its figures summed as the daemon flushes them (never a row per
      -- request). cost_nanos: the cost in 1e-9 of the currency, an integer so that sums do not drift; currency
      -- '' for an upstream without a price. model and tenant '(idle)': a local engine's time-based cost (power,
      -- a monthly amount) for intervals without traffic. key_id '': requests without an API key.
      CREATE TABLE usage_daily (
        day               TEXT NOT NULL,
        upstream          TEXT NOT NULL,
        model             TEXT NOT NULL,
        tenant            TEXT NOT NULL,
        key_id            TEXT NOT NULL,
        currency          TEXT NOT NULL,
        requests          INTEGER NOT NULL DEFAULT 0,
        sessions          INTEGER NOT NULL DEFAULT 0,
        prompt_tokens     INTEGER NOT NULL DEFAULT 0,
        cached_tokens     INTEGER NOT NULL DEFAULT 0,
        completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost_nanos        INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (day, upstream, model, tenant, key_id, currency)
      ) WITHOUT ROWID;
    `,
  },
  {
    version: 7,
    description: 'tenants: every conversation keyed by (tenant, session id); keys with a tenant, profiles and admin',
    sql: `
      -- A session's key is (tenant, id): the same X-Session-Id under two tenants is two sessions. The primary
      -- key leads with the tenant, so a session is still one b-tree search. Sessions stored before are
      -- tenant 'default' (the only tenant there was). The DEFAULT serves a daemon of the previous version
      -- still running on the file after a command of this one migrated it: its rows land in 'default' too.
      CREATE TABLE sessions_by_tenant_key (
        tenant       TEXT NOT NULL DEFAULT 'default',
        id           TEXT NOT NULL,
        profile      TEXT NOT NULL,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL,
        expires_at   INTEGER NOT NULL,
        turns        INTEGER NOT NULL DEFAULT 0,
        next_seq     INTEGER NOT NULL DEFAULT 0,
        retain_until INTEGER,
        PRIMARY KEY (tenant, id)
      ) WITHOUT ROWID;
      INSERT INTO sessions_by_tenant_key (tenant, id, profile, created_at, updated_at, expires_at, turns, next_seq, retain_until)
        SELECT 'default', id, profile, created_at, updated_at, expires_at, turns, next_seq, retain_until FROM sessions;
      DROP TABLE sessions;
      ALTER TABLE sessions_by_tenant_key RENAME TO sessions;
      -- The sweeper and an admin's listing of every tenant (expiry order across tenants), and one tenant's
      -- listing (keyset paging within the tenant). Each costs a page write per turn (expires_at moves).
      CREATE INDEX sessions_by_expiry ON sessions (expires_at, tenant, id);
      CREATE INDEX sessions_by_tenant ON sessions (tenant, expires_at, id);

      -- Messages carry their session's tenant; the window and the whole-session read stay one range scan of
      -- (tenant, session_id, turn, seq). Existing rows read the DEFAULT without being rewritten.
      ALTER TABLE messages ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
      DROP INDEX messages_by_session;
      CREATE UNIQUE INDEX messages_by_session ON messages (tenant, session_id, turn, seq);

      -- A key belongs to a tenant, may be limited to some profiles (a JSON array; NULL: every profile, the
      -- first one listed being the key's default) and may be an operator's (admin: every tenant, /metrics).
      -- Keys made before are tenant 'default', every profile, not admin.
      ALTER TABLE api_keys ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default';
      ALTER TABLE api_keys ADD COLUMN profiles TEXT;
      ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;

      -- The tenant of each request from now on (NULL: a request refused before its key was known, and every
      -- record written before this version). Hashed only when set, so older records keep their hashes.
      ALTER TABLE audit_log ADD COLUMN tenant TEXT;
    `,
  },
  {
    version: 8,
    description: 'the Responses and Conversations APIs: response records on their turns, settings and threads beside them',
    sql: `
      -- A response is one turn of a session (a chain's or a conversation's): its messages are its input and
      -- output items. Its record (JSON: the seqs where its input and its output start, previous response,
      -- model, status, usage) is on the last message of its turn, so it costs the turn no page of its own and
      -- goes with its messages. NULL on every other message.
      ALTER TABLE messages ADD COLUMN response TEXT;
      -- The settings a response repeats that differ from their defaults (metadata, tools, temperature, ...),
      -- redacted, encrypted like content when key_id is set. Most responses have none and no row here.
      CREATE TABLE response_settings (
        tenant     TEXT NOT NULL,
        session_id TEXT NOT NULL,
        turn       INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        settings   BLOB,
        key_id     TEXT,
        PRIMARY KEY (tenant, session_id, turn)
      ) WITHOUT ROWID;

      -- What a session seen by these APIs has beyond its row: a conversation's metadata (redacted, encrypted
      -- like content when key_id is set), or where a branch of a chain continues its parent's history.
      CREATE TABLE threads (
        tenant      TEXT NOT NULL,
        id          TEXT NOT NULL,
        kind        TEXT NOT NULL,
        parent_id   TEXT,
        parent_turn INTEGER,
        created_at  INTEGER NOT NULL,
        metadata    BLOB,
        key_id      TEXT,
        PRIMARY KEY (tenant, id)
      ) WITHOUT ROWID;

      -- They go with their session, however it goes (erasure, the sweeper, prune, an expired id reused), text
      -- blanked in place first as the session store does with messages.
      CREATE TRIGGER sessions_take_response_rows AFTER DELETE ON sessions BEGIN
        UPDATE response_settings SET settings = NULL WHERE tenant = OLD.tenant AND session_id = OLD.id;
        DELETE FROM response_settings WHERE tenant = OLD.tenant AND session_id = OLD.id;
        UPDATE threads SET metadata = NULL WHERE tenant = OLD.tenant AND id = OLD.id;
        DELETE FROM threads WHERE tenant = OLD.tenant AND id = OLD.id;
      END;
    `,
  },
  {
    version: 9,
    description: "the expiry indexes keyed by the expiry's minute, so that a turn moves them once a minute at most",
    sql: `
      -- The minute of expires_at (expiry-bucket.ts: integer division by 60000), which the two expiry indexes
      -- hold instead of expires_at itself: expires_at slides with each turn, and an indexed column rewritten
      -- by an UPDATE moves its index entries (a page write each) even when its value stays the same.
      ALTER TABLE sessions ADD COLUMN expiry_bucket INTEGER NOT NULL DEFAULT 0;
      UPDATE sessions SET expiry_bucket = expires_at / 60000;
      DROP INDEX sessions_by_expiry;
      DROP INDEX sessions_by_tenant;
      CREATE INDEX sessions_by_expiry ON sessions (expiry_bucket, tenant, id);
      CREATE INDEX sessions_by_tenant ON sessions (tenant, expiry_bucket, id);
      -- The bucket is always expires_at's, whoever writes the row: a turn's UPDATE sets only expires_at and
      -- these move the bucket when it changed (so the indexes only then). An INSERT that leaves it out (a
      -- daemon of the previous version on a file this one migrated) gets it here too.
      CREATE TRIGGER sessions_bucket_on_insert AFTER INSERT ON sessions
        WHEN NEW.expiry_bucket IS NOT NEW.expires_at / 60000
        BEGIN UPDATE sessions SET expiry_bucket = NEW.expires_at / 60000 WHERE tenant = NEW.tenant AND id = NEW.id; END;
      CREATE TRIGGER sessions_bucket_on_update AFTER UPDATE OF expires_at, expiry_bucket ON sessions
        WHEN NEW.expiry_bucket IS NOT NEW.expires_at / 60000
        BEGIN UPDATE sessions SET expiry_bucket = NEW.expires_at / 60000 WHERE tenant = NEW.tenant AND id = NEW.id; END;
    `,
  },
];

export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Brings the database up to SCHEMA_VERSION; refuses a database written by a newer cs-llm. */
export function migrate(db: Database, file: string): { from: number; to: number } {
  const from = db.pragma('user_version', { simple: true }) as number;
  if (from > SCHEMA_VERSION) {
    throw new ConfigError(`database ${file} has schema version ${from}, newer than this cs-llm understands (${SCHEMA_VERSION})`, {
      next: 'Upgrade cs-llm, or point --db / store.path at another file.',
    });
  }
  for (const migration of MIGRATIONS) {
    if (migration.version <= from) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.pragma(`user_version = ${migration.version}`);
    })();
  }
  return { from, to: SCHEMA_VERSION };
}
