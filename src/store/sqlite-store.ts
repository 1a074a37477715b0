import { auditAnchor, auditForSession, auditSince, createAuditWriter, pruneAuditBefore } from './audit.js';
import { openAuditKeyring, startAuditKey } from './audit-chain.js';
import { verifyAuditChain } from './audit-verify.js';
import { openDatabase, type SqliteDatabase } from './database.js';
import { requireContentKeys, rotateContentKey } from './key-rotation.js';
import { createSqliteKeys } from './keys.js';
import { startMaintenance } from './maintenance.js';
import { createScrubber } from './retention.js';
import type { SessionStore } from './sessions.js';
import { createSqliteSessions, type SqliteSessions } from './sqlite-sessions.js';
import type { OpenStoreOptions, Store } from './interface.js';
import { createSqliteUsage } from './usage.js';

// The Store on one SQLite connection. The handle stays in here (and the modules of src/store/ it hands it
// to); everything else sees the Store's promise-returning interfaces.

/** A synchronous call as a settled promise: no extra turn of the event loop, no copy of the result. */
function settle<T>(op: () => T): Promise<T> {
  try {
    return Promise.resolve(op());
  } catch (err) {
    return Promise.reject(err);
  }
}

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
  const scrubber = createScrubber(db, { onError: protection.onScrubError });
  let core: SqliteSessions;
  let keys: ReturnType<typeof createSqliteKeys>;
  let usage: ReturnType<typeof createSqliteUsage>;
  try {
    core = createSqliteSessions(db, scrubber, protection);
    keys = createSqliteKeys(db);
    usage = createSqliteUsage(db);
  } catch (err) {
    db.close();
    throw err;
  }
  const sessions: SessionStore = {
    loadWindow: (id, turns, now) => settle(() => core.loadWindow(id, turns, now)),
    appendTurn: (id, profile, messages, ttlMs, now) => settle(() => core.appendTurn(id, profile, messages, ttlMs, now)),
    get: (id, now) => settle(() => core.get(id, now)),
    list: (options) => settle(() => core.list(options)),
    delete: (id) => settle(() => core.delete(id)),
    sweepExpired: (now, batch) => settle(() => core.sweepExpired(now, batch)),
    pruneOlderThan: (before) => settle(() => core.pruneOlderThan(before)),
    export: (id) => settle(() => core.export(id)),
    scrubbed: (waitMs) => (scrubber.pending ? scrubber.request(waitMs) : Promise.resolve(true)),
    capRetention: (afterId, batch) => settle(() => core.capRetention(afterId, batch)),
  };
  const countLive = db.prepare<[number], { n: number }>('SELECT COUNT(*) AS n FROM sessions WHERE expires_at > ?');
  const countStored = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM sessions');
  const countMessages = db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM messages');
  const ping = db.prepare('SELECT 1');
  const keyring = [...(protection.readKeys ?? []), ...(protection.cipher ? [protection.cipher] : [])];
  let closed = false;

  const store: Store = {
    file: options.file,
    sessions,
    keys: {
      get generation() {
        return keys.generation;
      },
      create: (name, now) => settle(() => keys.create(name, now)),
      list: () => settle(() => keys.list()),
      revoke: (idOrPrefix, now) => settle(() => keys.revoke(idOrPrefix, now)),
      hasActiveKeys: () => settle(() => keys.hasActiveKeys()),
      verify: (key) => settle(() => keys.verify(key)),
    },
    audit: {
      keyring: (file) => settle(() => openAuditKeyring(db, file)),
      startKey: (ring) => settle(() => startAuditKey(db, ring)),
      writer: (ring, writerOptions) => createAuditWriter(db, ring, writerOptions),
      verify: (ring) => settle(() => verifyAuditChain(db, ring)),
      async *since(since) {
        yield* auditSince(db, since);
      },
      forSession: (sessionId) => settle(() => auditForSession(db, sessionId)),
      prune: (ring, before, now, limit) => settle(() => pruneAuditBefore(db, ring, before, now, limit)),
      anchor: () => settle(() => auditAnchor(db)),
    },
    maintenance: {
      start: (maintenanceOptions) =>
        startMaintenance(
          db,
          { sessions, pruneAudit: (ring, before, now, limit) => settle(() => pruneAuditBefore(db, ring, before, now, limit)) },
          { ...maintenanceOptions, file: options.file },
        ),
      scrub: (timeoutMs) => scrubber.request(timeoutMs),
      rotateKey: ({ to, from, batch }) =>
        rotateContentKey(db, { to, from: from ?? keyring, scrub: () => scrubber.request(10_000), ...(batch ? { batch } : {}) }),
      requireContentKeys: (now) => settle(() => requireContentKeys(db, protection.cipher ?? null, now)),
    },
    stats: {
      sessionCounts: (now) => settle(() => ({ live: countLive.get(now)!.n, stored: countStored.get()!.n })),
      messageCount: () => settle(() => countMessages.get()!.n),
    },
    usage: {
      add: (rows) => settle(() => usage.add(rows)),
      query: (range) => settle(() => usage.query(range)),
    },
    ping: () => settle(() => void ping.get()),
    close() {
      if (closed) return Promise.resolve();
      closed = true;
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
