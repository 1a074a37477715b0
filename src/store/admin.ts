// The operations that change the whole store from outside the request path: erasing a session, pruning
// sessions and audit records, scrubbing, rotating the encryption key. While a daemon runs it does them (the
// CLI asks it over its control socket, src/daemon/control.ts), so that one process writes the database;
// otherwise the CLI does them on a store it opens itself. Either way they run here, in bounded batches that
// yield to the event loop between them, so a daemon keeps serving while one runs.
//
// Each operation takes one request object: new fields (the tenant was one) are added to it without changing
// the operations' shape, and the control socket carries it as it is.

import { ConfigError, ConflictError } from '../core/errors.js';
import { DEFAULT_TENANT } from '../core/tenant.js';
import type { AuditKeyring } from './audit-key.js';
import { createCipher, parseKey, type ContentCipher } from './crypto.js';
import type { RotationResult } from './key-rotation.js';
import type { Store } from './interface.js';

/** How long an operation waits for its deleted text to leave the database and WAL files. */
export const SCRUB_WAIT_MS = 10_000;
/** Rows deleted per transaction (as the daemon's own sweeper: a few milliseconds on the event loop each). */
const BATCH = 200;

export interface DeleteSessionRequest {
  id: string;
  /** The session's tenant; absent: the default tenant. */
  tenant?: string;
}
export interface DeleteTenantRequest {
  /** Every session of this tenant goes. */
  tenant: string;
}
export interface PruneSessionsRequest {
  /** Also delete sessions not updated for this long; null: only expired ones. */
  olderThanMs: number | null;
  /** Only this tenant's sessions; absent: every tenant's. */
  tenant?: string;
}
export interface PruneAuditRequest {
  /** Records that finished before this time (ms) go. */
  before: number;
}
export interface ScrubRequest {
  /** Rewrite the store from its live rows first (VACUUM): also removes copies in pages' free space. */
  rewrite?: boolean;
}
export interface RotateKeyRequest {
  /** The new key: base64 of 32 bytes, as in a key file. */
  key: string;
}

export interface StoreAdmin {
  /** Deletes a session and its messages; scrubbed: its text is gone from the files too. */
  deleteSession(request: DeleteSessionRequest, signal?: AbortSignal): Promise<{ deleted: boolean; scrubbed: boolean }>;
  /** Deletes every session of a tenant (expired or not); scrubbed as deleteSession. */
  deleteTenant(request: DeleteTenantRequest, signal?: AbortSignal): Promise<{ deleted: number; scrubbed: boolean }>;
  /** Deletes expired sessions and, with olderThanMs, those not updated for that long. */
  pruneSessions(request: PruneSessionsRequest, signal?: AbortSignal): Promise<{ expired: number; old: number; scrubbed: boolean }>;
  /** Deletes the audit records older than `before` behind a new anchor signed with the audit key. */
  pruneAudit(request: PruneAuditRequest, signal?: AbortSignal): Promise<{ pruned: number; scrubbed: boolean }>;
  /**
   * A TRUNCATE checkpoint: true once deleted text is gone from both files. With `rewrite`, the store is
   * rewritten from its live rows first (StoreMaintenance.rewrite).
   */
  scrub(request?: ScrubRequest, signal?: AbortSignal): Promise<{ scrubbed: boolean; rewritten: boolean }>;
  /** Re-encrypts every stored message with the new key; new turns are stored under it too. */
  rotateKey(request: RotateKeyRequest, signal?: AbortSignal): Promise<RotationResult & { keyId: string }>;
}

const yieldToRequests = () => new Promise((resolve) => setImmediate(resolve));

/** Stops between batches when the caller went away or the daemon is stopping; what was done stays done. */
function checkAborted(signal: AbortSignal | undefined, what: string, done: number): void {
  if (!signal?.aborted) return;
  throw new ConflictError(`${what} stopped after ${done} (${String(signal.reason ?? 'cancelled')})`, {
    next: 'Run the command again: it goes on from where it stopped.',
  });
}

/**
 * The operations on an open store. `from`: the keys that open the current rows (default: the store's own);
 * `auditKey`: the ring that signs the audit retention anchor.
 */
export function localAdmin(
  store: Store,
  options: { from?: readonly ContentCipher[]; auditKey?: () => Promise<AuditKeyring> } = {},
): StoreAdmin {
  /** Calls step until it deletes fewer than BATCH, yielding between calls. */
  const inBatches = async (what: string, step: () => Promise<number>, signal?: AbortSignal): Promise<number> => {
    let total = 0;
    for (let n = BATCH; n === BATCH; total += n) {
      if (total > 0) await yieldToRequests();
      checkAborted(signal, what, total);
      n = await step();
    }
    return total;
  };
  return {
    async deleteSession({ id, tenant = DEFAULT_TENANT }) {
      const deleted = await store.sessions.delete(tenant, id);
      return { deleted, scrubbed: deleted ? await store.sessions.scrubbed(SCRUB_WAIT_MS) : true };
    },
    async deleteTenant({ tenant }) {
      // deleteTenant deletes in batches of its own, yielding between them.
      const deleted = await store.sessions.deleteTenant(tenant);
      return { deleted, scrubbed: deleted === 0 || (await store.sessions.scrubbed(SCRUB_WAIT_MS)) };
    },
    async pruneSessions({ olderThanMs, tenant = null }, signal) {
      const now = Date.now();
      const expired = await inBatches('deleting expired sessions', () => store.sessions.sweepExpired(now, BATCH, tenant), signal);
      checkAborted(signal, 'deleting old sessions', 0);
      // pruneOlderThan deletes in batches of its own, yielding between them.
      const old = olderThanMs === null ? 0 : await store.sessions.pruneOlderThan(now - olderThanMs, tenant);
      return { expired, old, scrubbed: expired + old === 0 || (await store.sessions.scrubbed(SCRUB_WAIT_MS)) };
    },
    async pruneAudit({ before }, signal) {
      if (!options.auditKey) throw new ConfigError('no audit key to sign the retention anchor with');
      const ring = await options.auditKey();
      const pruned = await inBatches('pruning audit records', () => store.audit.prune(ring, before, Date.now(), BATCH), signal);
      // The deleted records name sessions and keys: out of the WAL file too, as for sessions.
      return { pruned, scrubbed: pruned === 0 || (await store.maintenance.scrub(SCRUB_WAIT_MS)) };
    },
    scrub: async ({ rewrite = false } = {}) => ({
      scrubbed: await (rewrite ? store.maintenance.rewrite(SCRUB_WAIT_MS) : store.maintenance.scrub(SCRUB_WAIT_MS)),
      rewritten: rewrite,
    }),
    async rotateKey({ key }, signal) {
      const to = createCipher(parseKey(key, 'the new key'));
      const result = await store.maintenance.rotateKey({
        to,
        ...(options.from ? { from: options.from } : {}),
        ...(signal ? { signal } : {}),
      });
      return { ...result, keyId: to.keyId };
    },
  };
}
