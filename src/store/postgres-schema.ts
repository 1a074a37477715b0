// The PostgreSQL store's schema: the tables of the SQLite store at its schema 9 (since version 4 here;
// migrations.ts says what each column means), in PostgreSQL's types. Times are BIGINT milliseconds as there; message text, tool calls,
// names, settings and metadata are BYTEA, holding UTF-8 text when key_id is NULL and AES-256-GCM ciphertext
// when it is set (SQLite tells the two apart by the value's type; PostgreSQL columns have one type).
// Versions are rows of cs_llm_schema; postgres-db.ts applies them once, under an advisory lock, however
// many daemons start together.

/** Advisory lock keys, two int4 (a space apart from the one-bigint keys of the sessions' locks). */
export const LOCK_SPACE = 0x63736c6d; // 'cslm'
export const MIGRATE_LOCK = 1;
export const AUDIT_LOCK = 2;

export const PG_MIGRATIONS: ReadonlyArray<{ version: number; description: string; sql: string }> = [
  {
    version: 1,
    description: 'sessions, messages, keys, audit log, usage, Responses records (the SQLite schema 8)',
    sql: `
      CREATE TABLE sessions (
        tenant       TEXT NOT NULL,
        id           TEXT NOT NULL,
        profile      TEXT NOT NULL,
        created_at   BIGINT NOT NULL,
        updated_at   BIGINT NOT NULL,
        expires_at   BIGINT NOT NULL,
        turns        INTEGER NOT NULL DEFAULT 0,
        next_seq     INTEGER NOT NULL DEFAULT 0,
        retain_until BIGINT,
        PRIMARY KEY (tenant, id)
      );
      CREATE INDEX sessions_by_expiry ON sessions (expires_at, tenant, id);
      CREATE INDEX sessions_by_tenant ON sessions (tenant, expires_at, id);

      CREATE TABLE messages (
        tenant        TEXT NOT NULL,
        session_id    TEXT NOT NULL,
        seq           INTEGER NOT NULL,
        turn          INTEGER NOT NULL,
        role          TEXT NOT NULL,
        content       BYTEA,
        content_parts SMALLINT NOT NULL DEFAULT 0,
        tool_calls    BYTEA,
        tool_call_id  TEXT,
        name          BYTEA,
        created_at    BIGINT NOT NULL,
        key_id        TEXT,
        response      TEXT,
        -- The only index, as on SQLite: a turn costs one index entry per message. A message found by its seq
        -- (the Responses API) is a scan of its session's range; seqs are unique by construction (next_seq).
        PRIMARY KEY (tenant, session_id, turn, seq)
      );

      CREATE TABLE api_keys (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL,
        prefix      TEXT NOT NULL,
        hash        BYTEA NOT NULL,
        created_at  BIGINT NOT NULL,
        revoked_at  BIGINT,
        tenant      TEXT NOT NULL DEFAULT 'default',
        profiles    TEXT,
        admin       SMALLINT NOT NULL DEFAULT 0
      );
      CREATE INDEX api_keys_by_prefix ON api_keys (prefix);

      CREATE TABLE content_keys (
        id            TEXT PRIMARY KEY,
        first_used_at BIGINT NOT NULL,
        retired_at    BIGINT
      );

      CREATE TABLE audit_log (
        seq               BIGINT PRIMARY KEY,
        at                BIGINT NOT NULL,
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
        latency_ms        DOUBLE PRECISION NOT NULL,
        upstream_ms       DOUBLE PRECISION NOT NULL,
        prev_hash         TEXT NOT NULL,
        hash              TEXT NOT NULL,
        tenant            TEXT
      );
      CREATE INDEX audit_by_time ON audit_log (at);
      CREATE INDEX audit_by_session ON audit_log (session_id) WHERE session_id IS NOT NULL;

      CREATE TABLE audit_anchor (
        id              INTEGER PRIMARY KEY CHECK (id = 1),
        seq             BIGINT NOT NULL,
        hash            TEXT NOT NULL,
        pruned_records  BIGINT NOT NULL,
        pruned_at       BIGINT NOT NULL,
        key_id          TEXT,
        tag             TEXT
      );

      CREATE TABLE audit_chain (
        id          BIGSERIAL PRIMARY KEY,
        from_seq    BIGINT NOT NULL,
        prev_hash   TEXT NOT NULL,
        key_id      TEXT,
        tag         TEXT,
        created_at  BIGINT NOT NULL
      );
      -- The unsigned start the first key signs (audit-chain.ts), as SQLite's migration 4 leaves it.
      INSERT INTO audit_chain (from_seq, prev_hash, created_at)
        VALUES (1, repeat('0', 64), (extract(epoch FROM now()) * 1000)::bigint);

      -- The append-only rules of the SQLite schema, as triggers.
      CREATE FUNCTION cs_llm_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
      CREATE FUNCTION cs_llm_audit_delete() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF OLD.seq > COALESCE((SELECT seq FROM audit_anchor WHERE id = 1), 0) THEN
          RAISE EXCEPTION 'the audit log is append-only: only records up to the retention anchor may be pruned';
        END IF;
        RETURN OLD;
      END $$;
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION cs_llm_refuse('the audit log is append-only');
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log FOR EACH ROW EXECUTE FUNCTION cs_llm_audit_delete();
      CREATE TRIGGER audit_anchor_forward BEFORE UPDATE ON audit_anchor
        FOR EACH ROW WHEN (NEW.seq < OLD.seq) EXECUTE FUNCTION cs_llm_refuse('the audit anchor only moves forward');
      CREATE TRIGGER audit_anchor_no_delete BEFORE DELETE ON audit_anchor
        FOR EACH ROW EXECUTE FUNCTION cs_llm_refuse('the audit anchor cannot be removed');
      CREATE TRIGGER audit_chain_write_once BEFORE UPDATE ON audit_chain
        FOR EACH ROW WHEN (OLD.tag IS NOT NULL OR NEW.from_seq IS DISTINCT FROM OLD.from_seq OR NEW.prev_hash IS DISTINCT FROM OLD.prev_hash)
        EXECUTE FUNCTION cs_llm_refuse('the audit chain''s key records are written once');
      CREATE TRIGGER audit_chain_no_delete BEFORE DELETE ON audit_chain
        FOR EACH ROW EXECUTE FUNCTION cs_llm_refuse('the audit chain''s key records cannot be removed');

      CREATE TABLE usage_daily (
        day               TEXT NOT NULL,
        upstream          TEXT NOT NULL,
        model             TEXT NOT NULL,
        tenant            TEXT NOT NULL,
        key_id            TEXT NOT NULL,
        currency          TEXT NOT NULL,
        requests          BIGINT NOT NULL DEFAULT 0,
        sessions          BIGINT NOT NULL DEFAULT 0,
        prompt_tokens     BIGINT NOT NULL DEFAULT 0,
        cached_tokens     BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0,
        cost_nanos        BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (day, upstream, model, tenant, key_id, currency)
      );

      CREATE TABLE response_settings (
        tenant     TEXT NOT NULL,
        session_id TEXT NOT NULL,
        turn       INTEGER NOT NULL,
        created_at BIGINT NOT NULL,
        settings   BYTEA,
        key_id     TEXT,
        PRIMARY KEY (tenant, session_id, turn)
      );
      CREATE TABLE threads (
        tenant      TEXT NOT NULL,
        id          TEXT NOT NULL,
        kind        TEXT NOT NULL,
        parent_id   TEXT,
        parent_turn INTEGER,
        created_at  BIGINT NOT NULL,
        metadata    BYTEA,
        key_id      TEXT,
        PRIMARY KEY (tenant, id)
      );
      -- They go with their session, however it goes (erasure, the sweeper, prune, an expired id reused).
      CREATE FUNCTION cs_llm_session_gone() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        DELETE FROM response_settings WHERE tenant = OLD.tenant AND session_id = OLD.id;
        DELETE FROM threads WHERE tenant = OLD.tenant AND id = OLD.id;
        RETURN NULL;
      END $$;
      CREATE TRIGGER sessions_take_response_rows AFTER DELETE ON sessions FOR EACH ROW EXECUTE FUNCTION cs_llm_session_gone();

      -- A turn in one round trip (postgres-sessions.ts): the session's turns serialised by an advisory lock on
      -- its key (two daemons, one session), a live session bumped or a new or expired one started afresh,
      -- and, when the messages come with it (not encrypted: their seqs are not needed before they are
      -- written), the messages inserted, the response record on the last. Returns the turn and its first seq.
      CREATE FUNCTION cs_llm_append_turn(
        p_tenant text, p_id text, p_profile text, p_now bigint, p_expires bigint, p_keep bigint, p_n integer,
        p_roles text[], p_contents bytea[], p_parts smallint[], p_tool_calls bytea[], p_tool_call_ids text[],
        p_names bytea[], p_record text, p_outputs integer,
        OUT o_turn integer, OUT o_first integer) LANGUAGE plpgsql AS $$
      DECLARE v_next integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(hashtextextended(p_tenant || chr(31) || p_id, 0));
        UPDATE sessions s SET profile = p_profile, updated_at = p_now,
            retain_until = CASE WHEN p_keep IS NULL THEN s.retain_until
                                ELSE LEAST(COALESCE(s.retain_until, s.created_at + p_keep), s.created_at + p_keep) END,
            expires_at = LEAST(p_expires, COALESCE(s.created_at + p_keep, p_expires), COALESCE(s.retain_until, p_expires)),
            turns = s.turns + 1, next_seq = s.next_seq + p_n
          WHERE s.tenant = p_tenant AND s.id = p_id AND s.expires_at > p_now
          RETURNING s.turns, s.next_seq INTO o_turn, v_next;
        IF FOUND THEN
          o_first := v_next - p_n;
        ELSE
          DELETE FROM messages m WHERE m.tenant = p_tenant AND m.session_id = p_id;
          DELETE FROM sessions s WHERE s.tenant = p_tenant AND s.id = p_id;
          INSERT INTO sessions (tenant, id, profile, created_at, updated_at, expires_at, turns, next_seq, retain_until)
            VALUES (p_tenant, p_id, p_profile, p_now, p_now, LEAST(p_expires, COALESCE(p_now + p_keep, p_expires)), 1, p_n,
                    p_now + p_keep);
          o_turn := 1;
          o_first := 0;
        END IF;
        IF p_roles IS NOT NULL THEN
          INSERT INTO messages (tenant, session_id, seq, turn, role, content, content_parts, tool_calls, tool_call_id, name,
                                created_at, key_id, response)
            SELECT p_tenant, p_id, o_first + u.o - 1, o_turn, u.r, u.c, u.pa, u.tc, u.tci, u.nm, p_now, NULL,
                   CASE WHEN u.o = p_n AND p_record IS NOT NULL
                        THEN (p_record::jsonb || jsonb_build_object('first', o_first, 'out', o_first + p_n - p_outputs))::text END
            FROM unnest(p_roles, p_contents, p_parts, p_tool_calls, p_tool_call_ids, p_names) WITH ORDINALITY AS u(r, c, pa, tc, tci, nm, o);
        END IF;
      END $$;
    `,
  },
  {
    version: 2,
    description: 'several turns in one call (the turns of concurrent requests, batched by postgres-batch.ts)',
    sql: `
      -- The turns of one batch in one transaction, each as cs_llm_append_turn does it, in the order given (two
      -- turns of one session keep theirs). Every session's lock is taken first, in the order of the lock keys:
      -- two daemons' batches that share sessions then wait for each other in one direction only, never in a
      -- cycle. The messages of all turns are in one set of arrays, p_ns[i] of them for turn i.
      CREATE FUNCTION cs_llm_append_turns(
        p_tenants text[], p_ids text[], p_profiles text[], p_nows bigint[], p_expires bigint[], p_keeps bigint[], p_ns integer[],
        p_roles text[], p_contents bytea[], p_parts smallint[], p_tool_calls bytea[], p_tool_call_ids text[],
        p_names bytea[], p_records text[], p_outputs integer[])
        RETURNS TABLE (o_turn integer, o_first integer) LANGUAGE plpgsql AS $$
      DECLARE v_from integer := 1; v_to integer;
      BEGIN
        PERFORM pg_advisory_xact_lock(l.k)
          FROM (SELECT DISTINCT hashtextextended(u.t || chr(31) || u.i, 0) AS k FROM unnest(p_tenants, p_ids) AS u(t, i) ORDER BY 1) l;
        FOR n IN 1 .. cardinality(p_ids) LOOP
          v_to := v_from + p_ns[n] - 1;
          SELECT a.o_turn, a.o_first INTO o_turn, o_first FROM cs_llm_append_turn(p_tenants[n], p_ids[n], p_profiles[n], p_nows[n],
            p_expires[n], p_keeps[n], p_ns[n], p_roles[v_from:v_to], p_contents[v_from:v_to], p_parts[v_from:v_to],
            p_tool_calls[v_from:v_to], p_tool_call_ids[v_from:v_to], p_names[v_from:v_to], p_records[n], p_outputs[n]) a;
          RETURN NEXT;
          v_from := v_to + 1;
        END LOOP;
      END $$;
    `,
  },
  {
    version: 3,
    description: "an audit batch in one round trip when the writer knows the chain's tail",
    sql: `
      -- An audit batch chained by the daemon (postgres-audit.ts: the HMAC key never leaves it) from the tail it
      -- last wrote: under the audit lock, inserted only when the chain is still under p_key and its tail is
      -- still (p_after, p_after_hash). Otherwise nothing is written and the answer says why: 'moved' (another
      -- daemon wrote since; o_seq and o_hash are the tail to chain from now) or 'key' (cs-llm audit new-key;
      -- o_hash is the chain's key now).
      -- Each statement of a volatile function reads what was committed before it ran: the tail read after
      -- the lock is the one every writer sees.
      CREATE FUNCTION cs_llm_audit_append(p_key text, p_after bigint, p_after_hash text,
        p_seq bigint[], p_at bigint[], p_key_id text[], p_method text[], p_route text[], p_session_id text[], p_upstream text[],
        p_status integer[], p_outcome text[], p_error_code text[], p_prompt_tokens integer[], p_completion_tokens integer[],
        p_latency_ms float8[], p_upstream_ms float8[], p_prev_hash text[], p_hash text[], p_tenant text[],
        OUT o_status text, OUT o_seq bigint, OUT o_hash text) LANGUAGE plpgsql AS $$
      DECLARE v_key text;
      BEGIN
        PERFORM pg_advisory_xact_lock(${LOCK_SPACE}, ${AUDIT_LOCK});
        SELECT c.key_id INTO v_key FROM audit_chain c ORDER BY c.id DESC LIMIT 1;
        SELECT l.seq, l.hash INTO o_seq, o_hash FROM audit_log l ORDER BY l.seq DESC LIMIT 1;
        IF NOT FOUND THEN
          SELECT a.seq, a.hash INTO o_seq, o_hash FROM audit_anchor a WHERE a.id = 1;
          IF NOT FOUND THEN o_seq := 0; o_hash := repeat('0', 64); END IF;
        END IF;
        IF v_key IS DISTINCT FROM p_key THEN o_status := 'key'; o_hash := v_key; RETURN; END IF;
        IF o_seq <> p_after OR o_hash <> p_after_hash THEN o_status := 'moved'; RETURN; END IF;
        INSERT INTO audit_log (seq, at, key_id, method, route, session_id, upstream, status, outcome, error_code, prompt_tokens,
            completion_tokens, latency_ms, upstream_ms, prev_hash, hash, tenant)
          SELECT * FROM unnest(p_seq, p_at, p_key_id, p_method, p_route, p_session_id, p_upstream, p_status, p_outcome, p_error_code,
            p_prompt_tokens, p_completion_tokens, p_latency_ms, p_upstream_ms, p_prev_hash, p_hash, p_tenant);
        o_status := 'ok';
      END $$;
    `,
  },
  {
    version: 4,
    description: "the expiry indexes keyed by the expiry's minute (the SQLite schema 9)",
    sql: `
      -- The minute of expires_at (expiry-bucket.ts), which the expiry indexes hold instead of expires_at: a
      -- turn's UPDATE then changes no indexed column unless its expiry crossed into another minute, and
      -- PostgreSQL can make it a HOT update (no new entry in any index, the primary key's included) when the
      -- row's page has room. Generated, so every writer keeps it exact.
      ALTER TABLE sessions ADD COLUMN expiry_bucket BIGINT GENERATED ALWAYS AS (expires_at / 60000) STORED;
      DROP INDEX sessions_by_expiry;
      DROP INDEX sessions_by_tenant;
      CREATE INDEX sessions_by_expiry ON sessions (expiry_bucket, tenant, id);
      CREATE INDEX sessions_by_tenant ON sessions (tenant, expiry_bucket, id);
    `,
  },
];

export const PG_SCHEMA_VERSION = PG_MIGRATIONS[PG_MIGRATIONS.length - 1]!.version;
