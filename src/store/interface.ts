// The store's interface: everything the daemon and the CLI keep, behind small parts. Every method returns a
// promise, so another implementation (PostgreSQL, whose client is asynchronous) fits the same seam; the
// SQLite one (sqlite-store.ts) answers with already-settled promises. No other folder touches a database
// handle. store.ts opens one.

import { EnvironmentError } from '../core/errors.js';
import type { AuditAnchor, AuditRecord, AuditWriter, AuditWriterOptions } from './audit.js';
import type { AuditKeyring } from './audit-key.js';
import type { ChainCheck } from './audit-verify.js';
import type { ContentCipher } from './crypto.js';
import type { OpenDatabaseOptions } from './database.js';
import type { KeyStore } from './keys.js';
import type { LockWaitStats } from './lock-wait.js';
import type { RotationResult } from './key-rotation.js';
import type { MaintenanceOptions } from './maintenance.js';
import type { ResponseStore } from './responses.js';
import type { ContentProtection, SessionStore } from './sessions.js';
import type { UsageStore } from './usage.js';

export interface Store {
  /** Where the data lives (a file path for SQLite), for messages. */
  readonly file: string;
  readonly sessions: SessionStore;
  /** The Responses and Conversations APIs' records, beside the sessions they belong to (responses.ts). */
  readonly responses: ResponseStore;
  readonly keys: KeyStore;
  readonly audit: AuditLog;
  readonly maintenance: StoreMaintenance;
  readonly stats: StoreStats;
  /** Tokens and cost per day, upstream, model, tenant and key (usage.ts). */
  readonly usage: UsageStore;
  /** Resolves once the database answered a query; rejects with why it did not (readiness). */
  ping(): Promise<void>;
  /** Checkpoints and closes. Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The audit log (audit.ts, audit-chain.ts, audit-verify.ts): one record per API request, metadata only,
 * chained with HMAC-SHA-256 under a key kept outside the database (audit-key.ts).
 */
export interface AuditLog {
  /** The key ring in `file` (made on first use), with the keyed chain started in the database if it was not. */
  keyring(file: string): Promise<AuditKeyring>;
  /** Puts the ring's first key in force from the next record on (`cs-llm audit new-key`). */
  startKey(ring: AuditKeyring): Promise<{ fromSeq: number; previousKeyId: string | null }>;
  /** A writer that queues records and stores them in batches off the request path, chained under `ring`. */
  writer(ring: AuditKeyring, options?: AuditWriterOptions): AuditWriter;
  /** Walks the whole chain; names the first record that does not fit (or cannot be checked without its key). */
  verify(ring: AuditKeyring | null): Promise<ChainCheck>;
  /** Records finished at or after `since` (ms), oldest first; only one tenant's requests when `tenant` is given. */
  since(since: number, tenant?: string | null): AsyncIterable<AuditRecord>;
  /**
   * The records that name one session of a tenant (a subject access request); for the default tenant also
   * those written before tenants existed, which name no tenant.
   */
  forSession(tenant: string, sessionId: string): Promise<AuditRecord[]>;
  /**
   * Retention: deletes up to `limit` of the oldest records before `before` (ms); the last one deleted becomes
   * the anchor (signed under `ring`) the rest of the chain starts from. Returns how many went (call again while
   * it returns `limit`).
   */
  prune(ring: AuditKeyring, before: number, now: number, limit?: number): Promise<number>;
  /** Where the chain starts when its head was pruned. */
  anchor(): Promise<AuditAnchor | undefined>;
}

/** Upkeep and whole-database operations. */
export interface StoreMaintenance {
  /** Background upkeep (checkpoints, expired-session sweep, audit retention). Returns its stop function. */
  start(options: Omit<MaintenanceOptions, 'file'>): () => Promise<void>;
  /**
   * Makes deleted text gone from the files (database and WAL). Resolves true when done, false when other
   * connections kept it from finishing within timeoutMs (it is retried in the background meanwhile).
   */
  scrub(timeoutMs?: number): Promise<boolean>;
  /**
   * Rewrites the stored text's tables from their live rows (SQLite: VACUUM of the whole file; PostgreSQL:
   * VACUUM FULL of the tables holding text), then scrubs: no copy a deletion could leave in the free space of
   * a page survives it. Holds the store while it runs (seconds per GB): an operator's step, not the request
   * path's. Resolves as scrub does.
   */
  rewrite(timeoutMs?: number): Promise<boolean>;
  /**
   * Re-encrypts every stored message under `to` (plain-text rows too) in small batches, retires the old
   * keys and scrubs. New rows are stored under `to` from the start. `from`: keys that open the current rows
   * (default: the store's own).
   */
  rotateKey(options: { to: ContentCipher; from?: readonly ContentCipher[]; batch?: number; signal?: AbortSignal }): Promise<RotationResult>;
  /**
   * Rejects (with the fix) when stored messages are encrypted with a key this store was not given; keys
   * whose rows are all gone are marked retired on the way.
   */
  requireContentKeys(now?: number): Promise<void>;
}

export interface StoreStats {
  /** Sessions not expired at `now`, and all session rows (expired ones wait for the sweeper). */
  sessionCounts(now: number): Promise<{ live: number; stored: number }>;
  /** Stored messages, all sessions. */
  messageCount(): Promise<number>;
  /** Calls that found the database locked by another connection and waited for it (off the event loop). */
  lockWaits(): Promise<LockWaitStats>;
}

export type OpenStoreOptions = OpenDatabaseOptions & {
  /** Redaction, encryption and retention of stored messages (protectionFor(config) builds it). */
  protection?: ContentProtection;
};

/**
 * The store cannot be reached (PostgreSQL down or unreachable): the daemon answers 503 store_unavailable and
 * /readyz is not ready until it is back; nothing needs a restart.
 */
export class StoreUnavailableError extends EnvironmentError {
  readonly code = 'store_unavailable';
}
