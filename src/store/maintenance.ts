import type { SqliteDatabase } from './database.js';
import type { SessionRef, SessionStore } from './sessions.js';
import type { AuditKeyring } from './audit-key.js';
import { startCheckpointer, type Checkpointer } from './checkpointer.js';

/** WAL length (pages; 32,768 pages of 4 KiB = 128 MiB) past which this thread checkpoints once so the WAL can rewind. */
export const WAL_REWIND_FRAMES = 32_768;

export interface MaintenanceOptions {
  /** The database file; checkpoints run on a worker thread with their own connection to it. */
  file: string;
  /** PASSIVE WAL checkpoint interval; checkpoints never run inside a request's commit. */
  checkpointIntervalMs?: number;
  /** Expired-session sweep interval (audit retention runs on it too). */
  sweepIntervalMs?: number;
  /** Audit records older than this are pruned on each sweep; 0 or absent keeps them. */
  auditRetentionMs?: number;
  /** The audit key, which signs the retention anchor; without it nothing is pruned. */
  auditKey?: AuditKeyring;
  now?: () => number;
  onError?: (what: 'checkpoint' | 'sweep' | 'audit prune', err: unknown) => void;
  onSweep?: (deleted: number) => void;
  onAuditPrune?: (pruned: number) => void;
  /** WAL length in pages that triggers the rewind checkpoint on this thread (default WAL_REWIND_FRAMES). */
  walRewindFrames?: number;
  onRewind?: () => void;
  /** The checkpoint thread started (true) or ended (false): it runs only while the database is written. */
  onCheckpointThread?: (running: boolean) => void;
}

/**
 * Background upkeep, off the request path: WAL checkpoints on a worker thread while the database is written
 * (automatic ones are disabled, so no commit pays for one), and deletion of expired sessions in small batches, yielding to the event loop
 * between batches so requests are never stalled for long. Nothing here keeps a process alive. Returns an
 * async stop function.
 */
export function startMaintenance(
  /** The SQLite handle for checkpoints; null for a store without a WAL of its own (PostgreSQL checkpoints itself). */
  db: SqliteDatabase | null,
  work: {
    sessions: Pick<SessionStore, 'sweepExpired' | 'capRetention'>;
    /** Audit retention: deletes up to `limit` records before `before`, returns how many. */
    pruneAudit: (key: AuditKeyring, before: number, now: number, limit: number) => Promise<number>;
  },
  options: MaintenanceOptions,
): () => Promise<void> {
  const { sessions } = work;
  const now = options.now ?? Date.now;
  const interval = options.checkpointIntervalMs ?? 1000;
  const batch = 200;
  let stopped = false;

  let checkpointer: Checkpointer | null = null;
  let inThread: NodeJS.Timeout | null = null;
  if (db && options.file !== ':memory:') {
    try {
      // The worker copies pages while this thread keeps appending, so under a steady write load the WAL is
      // never entirely copied at the moment of a write, never rewinds, and would grow without bound. Once it
      // is long, one checkpoint here (between requests; it copies only what the worker has not and syncs)
      // lets the next write start the WAL from the beginning again. At a steady 4,000 turns/s that is one
      // pause of some milliseconds every few seconds; at a chat load, one every several minutes.
      let rewinding = false;
      const rewind = () => {
        rewinding = false;
        try {
          const [result] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ busy: number; log: number; checkpointed: number }>;
          // Busy (the worker was mid-pass) or not all copied: the worker's next pass asks again.
          if (result && result.busy === 0 && result.checkpointed === result.log) options.onRewind?.();
        } catch (err) {
          options.onError?.('checkpoint', err);
        }
      };
      checkpointer = startCheckpointer(db, options.file, interval, (err) => options.onError?.('checkpoint', err), {
        onPass: (frames) => {
          if (frames < (options.walRewindFrames ?? WAL_REWIND_FRAMES) || rewinding || stopped) return;
          rewinding = true;
          setImmediate(rewind);
        },
        ...(options.onCheckpointThread ? { onThread: options.onCheckpointThread } : {}),
      });
    } catch (err) {
      options.onError?.('checkpoint', err);
    }
  }
  if (db && !checkpointer && options.file !== ':memory:') {
    // No worker threads here: checkpoint on this thread, still on a timer rather than in a commit.
    inThread = setInterval(() => {
      try {
        db.pragma('wal_checkpoint(PASSIVE)');
      } catch (err) {
        options.onError?.('checkpoint', err);
      }
    }, interval);
    inThread.unref();
  }

  const yieldToRequests = () => new Promise((resolve) => setImmediate(resolve));
  /**
   * Deletes in batches of `batch` until one comes back short, yielding to requests between batches; runs one
   * at a time (a batch waiting for another process's lock is not joined by the next interval's).
   */
  const inBatches = (what: 'sweep' | 'audit prune', step: () => Promise<number>, done: (total: number) => void) => {
    let running = false;
    return async (): Promise<void> => {
      if (running || stopped) return;
      running = true;
      try {
        let total = 0;
        for (let n = batch; n === batch && !stopped; total += n) {
          if (total > 0) await yieldToRequests();
          n = await step();
        }
        if (total > 0) done(total);
      } catch (err) {
        options.onError?.(what, err);
      } finally {
        running = false;
      }
    };
  };
  const sweepOnce = inBatches(
    'sweep',
    () => sessions.sweepExpired(now(), batch),
    (n) => options.onSweep?.(n),
  );
  const retention = options.auditRetentionMs ?? 0;
  const auditKey = options.auditKey;
  // Without the key that signs the retention anchor, nothing is pruned.
  const pruneAuditOnce = inBatches(
    'audit prune',
    () => (retention > 0 && auditKey ? work.pruneAudit(auditKey, now() - retention, now(), batch) : Promise.resolve(0)),
    (n) => options.onAuditPrune?.(n),
  );
  const sweep = setInterval(() => {
    void sweepOnce();
    void pruneAuditOnce();
  }, options.sweepIntervalMs ?? 60_000);
  sweep.unref();
  setImmediate(() => void pruneAuditOnce());

  // Once at start: a retention set or lowered since sessions were stored caps their expiry too (new turns
  // apply it as they are written). In small batches, yielding between them; then one sweep deletes them.
  const capOnce = async (after: SessionRef | null, capped: number): Promise<void> => {
    if (stopped) return;
    try {
      const step = await sessions.capRetention(after, batch);
      if (step.next !== null) {
        setImmediate(() => void capOnce(step.next!, capped + step.capped));
        return;
      }
      if (capped + step.capped > 0) await sweepOnce();
    } catch (err) {
      options.onError?.('sweep', err);
    }
  };
  setImmediate(() => void capOnce(null, 0));

  return async () => {
    stopped = true;
    clearInterval(sweep);
    if (inThread) clearInterval(inThread);
    await checkpointer?.stop();
  };
}
