import { auditAnchor, auditForSession, auditSince, createAuditWriter, pruneAuditBefore } from './audit.js';
import { openAuditKeyring, startAuditKey } from './audit-chain.js';
import { verifyAuditChain } from './audit-verify.js';
import { openDatabase, type SqliteDatabase } from './database.js';
import { createLockWait, LOCK_POLL_MS } from './lock-wait.js';
import { requireContentKeys, rotateContentKey } from './key-rotation.js';
import { createSqliteKeys } from './keys.js';
import { startMaintenance } from './maintenance.js';
import { createScrubber } from './retention.js';
import type { SessionStore } from './sessions.js';
import { createGroupCommit } from './group-commit.js';
import { createSqliteSessions, type SqliteSessions, type TurnArgs } from './sqlite-sessions.js';
import { createSqliteResponses, type SqliteResponses } from './sqlite-responses.js';
import type { ResponseStore } from './responses.js';
import type { OpenStoreOptions, Store } from './interface.js';
import { createSqliteUsage } from './usage.js';
import { bucketOf } from './expiry-bucket.js';

// The Store on one SQLite connection. The handle stays in here (and the modules of src/store/ it hands it
// to); everything else sees the Store's promise-returning interfaces. Each call runs at once and settles its
// promise with the result (no extra turn of the event loop, no copy); one that finds another connection's
// lock waits for it on timers (lock-wait.ts), never on the event loop for more than LOCK_POLL_MS.

/** Sessions deleted per transaction by pruneOlderThan (as the sweeper's batches: a few ms each). */
const PRUNE_BATCH = 200;

export interface SqliteStore {
  store: Store;
  /** The handle, for src/store/ itself (its bench seeds through it). */
  db: SqliteDatabase;
  /** The synchronous session store under store.sessions. */
  sessions: SqliteSessions;
}

export function openSqliteStore(options: OpenStoreOptions): SqliteStore {
  const db = openDatabase(options);
  const protection = options.protection ?? {};
  const scrubber = createScrubber(db, { onError: protection.onScrubError, busyMs: LOCK_POLL_MS });
  const lock = createLockWait({ file: options.file, maxWaitMs: options.busyTimeoutMs ?? 5000 });
  const { read, write } = lock;
  let core: SqliteSessions;
  let keys: ReturnType<typeof createSqliteKeys>;
  let usage: ReturnType<typeof createSqliteUsage>;
  let chains: SqliteResponses;
  try {
    core = createSqliteSessions(db, scrubber, protection);
    chains = createSqliteResponses(db, core, scrubber, protection);
    keys = createSqliteKeys(db);
    usage = createSqliteUsage(db);
  } catch (err) {
    db.close();
    throw err;
  }
  /** Runs op with SQLite's own lock wait (busyTimeoutMs), for what happens only while nothing is served. */
  const patiently = <T>(op: () => T): T => {
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    try {
      return op();
    } finally {
      if (db.open) db.pragma(`busy_timeout = ${LOCK_POLL_MS}`);
    }
  };
  // Opening waited for locks as long as busyTimeoutMs (nothing else runs yet); from now on, briefly.
  db.pragma(`busy_timeout = ${LOCK_POLL_MS}`);
  // A long deletion (a prune, a whole tenant) in batches, each its own transaction, yielding between them:
  // requests interleave with it.
  const inBatches = async (step: () => number): Promise<number> => {
    let total = 0;
    for (;;) {
      const n = await write(step);
      total += n;
      if (n < PRUNE_BATCH) return total;
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  const turns = createGroupCommit<TurnArgs>(
    write,
    (t) => core.appendTurn(...t),
    (group) => core.appendTurns(group),
  );
  const sessions: SessionStore = {
    loadWindow: (tenant, id, turns, now) => read(() => core.loadWindow(tenant, id, turns, now)),
    appendTurn: (tenant, id, profile, messages, ttlMs, now, alone) => turns.append([tenant, id, profile, messages, ttlMs, now], alone),
    get: (tenant, id, now) => read(() => core.get(tenant, id, now)),
    list: (options) => read(() => core.list(options)),
    liveSessions: (tenant, id, now, atMost) => read(() => core.liveSessions(tenant, id, now, atMost)),
    delete: (tenant, id) => write(() => core.delete(tenant, id)),
    deleteTenant: (tenant) => inBatches(() => core.deleteOfTenant(tenant, PRUNE_BATCH)),
    sweepExpired: (now, batch, tenant) => write(() => core.sweepExpired(now, batch, tenant)),
    pruneOlderThan: (before, tenant = null) => inBatches(() => core.pruneStale(before, PRUNE_BATCH, tenant)),
    export: (tenant, id) => read(() => core.export(tenant, id)),
    scrubbed: (waitMs) => (scrubber.pending ? scrubber.request(waitMs) : Promise.resolve(true)),
    capRetention: (after, batch) => write(() => core.capRetention(after, batch)),
  };
  const responses: ResponseStore = {
    head: (tenant, id, now) => read(() => chains.head(tenant, id, now)),
    continuation: (tenant, id, turn, now) => read(() => chains.continuation(tenant, id, turn, now)),
    get: (tenant, id, turn, now) => read(() => chains.get(tenant, id, turn, now)),
    rows: (tenant, id, from, to, now) => read(() => chains.rows(tenant, id, from, to, now)),
    row: (tenant, id, seq, now) => read(() => chains.row(tenant, id, seq, now)),
    commit: (...args) => write(() => chains.commit(...args)),
    delete: (tenant, id, turn) => write(() => chains.delete(tenant, id, turn)),
    deleteRow: (tenant, id, seq) => write(() => chains.deleteRow(tenant, id, seq)),
    thread: (tenant, id) => read(() => chains.thread(tenant, id)),
    createConversation: (...args) => write(() => chains.createConversation(...args)),
    setMetadata: (tenant, id, metadata, now) => write(() => chains.setMetadata(tenant, id, metadata, now)),
  };
  // Live sessions: the buckets after now's from the index alone, now's own row by row (expiry-bucket.ts).
  const countLive = db.prepare<[{ bucket: number; now: number }], { n: number }>(
    `SELECT (SELECT COUNT(*) FROM sessions WHERE expiry_bucket > @bucket)
          + (SELECT COUNT(*) FROM sessions WHERE expiry_bucket = @bucket AND expires_at > @now) AS n`,
  );
  const countStored = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM sessions');
  const countMessages = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM messages');
  const ping = db.prepare('SELECT 1');
  const keyring = [...(protection.readKeys ?? []), ...(protection.cipher ? [protection.cipher] : [])];
  let closed = false;

  const store: Store = {
    file: options.file,
    sessions,
    responses,
    keys: {
      get generation() {
        return keys.generation;
      },
      create: (name, now, scope) => write(() => keys.create(name, now, scope)),
      list: () => read(() => keys.list()),
      revoke: (idOrPrefix, now) => write(() => keys.revoke(idOrPrefix, now)),
      hasActiveKeys: () => read(() => keys.hasActiveKeys()),
      verify: (key) => read(() => keys.verify(key)),
    },
    audit: {
      keyring: (file) => write(() => openAuditKeyring(db, file)),
      startKey: (ring) => write(() => startAuditKey(db, ring)),
      writer: (ring, writerOptions) => {
        // Made at start and closed at stop, when nothing is being served: those two may wait inside SQLite for
        // a lock as opening does (the first signs the chain's start, the last writes the final records).
        const writer = patiently(() => createAuditWriter(db, ring, writerOptions));
        const close = writer.close.bind(writer);
        writer.close = () => patiently(close);
        return writer;
      },
      verify: (ring) => read(() => verifyAuditChain(db, ring)),
      async *since(since, tenant) {
        yield* auditSince(db, since, tenant ?? null);
      },
      forSession: (tenant, sessionId) => read(() => auditForSession(db, tenant, sessionId)),
      prune: (ring, before, now, limit) => write(() => pruneAuditBefore(db, ring, before, now, limit)),
      anchor: () => read(() => auditAnchor(db)),
    },
    maintenance: {
      start: (maintenanceOptions) =>
        startMaintenance(
          db,
          { sessions, pruneAudit: (ring, before, now, limit) => write(() => pruneAuditBefore(db, ring, before, now, limit)) },
          { ...maintenanceOptions, file: options.file },
        ),
      scrub: (timeoutMs) => scrubber.request(timeoutMs),
      rewrite: async (timeoutMs) => {
        // VACUUM builds the file anew from the live rows, so a deleted row's copy that a page rebuild left in
        // the page's free space (which secure_delete does not reach) is gone; the scrub then empties the WAL,
        // through which the new pages were written.
        await write(() => db.exec('VACUUM'));
        return scrubber.request(timeoutMs);
      },
      rotateKey: async ({ to, from, batch, signal }) => {
        const old = from ?? [...keyring];
        // New turns go under the new key from now on (a daemon rotating while it serves); the old still opens.
        await write(() => core.encryptWith(to));
        keyring.push(to);
        return rotateContentKey(db, {
          to,
          from: old,
          write,
          scrub: () => scrubber.request(10_000),
          ...(batch ? { batch } : {}),
          ...(signal ? { signal } : {}),
        });
      },
      requireContentKeys: (now) => write(() => requireContentKeys(db, protection.cipher ?? null, now)),
    },
    stats: {
      sessionCounts: (now) => read(() => ({ live: countLive.get({ bucket: bucketOf(now), now })!.n, stored: countStored.get()!.n })),
      messageCount: () => read(() => countMessages.get()!.n),
      lockWaits: () => Promise.resolve(lock.stats()),
    },
    usage: {
      add: (rows) => write(() => usage.add(rows)),
      query: (range) => read(() => usage.query(range)),
    },
    ping: () => read(() => void ping.get()),
    close() {
      if (closed) return Promise.resolve();
      turns.flush();
      closed = true;
      lock.close();
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // another connection may hold the file; SQLite checkpoints again when the last one closes
      }
      db.close();
      return Promise.resolve();
    },
  };
  return { store, db, sessions: core };
}
