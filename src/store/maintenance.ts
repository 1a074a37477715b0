import type { SqliteDatabase } from './database.js';
import type { SessionStore } from './sessions.js';

export interface MaintenanceOptions {
  /** PASSIVE WAL checkpoint interval; checkpoints never run inside a request's commit. */
  checkpointIntervalMs?: number;
  /** Expired-session sweep interval. */
  sweepIntervalMs?: number;
  now?: () => number;
  onError?: (what: 'checkpoint' | 'sweep', err: unknown) => void;
  onSweep?: (deleted: number) => void;
}

/**
 * Background upkeep on timers, off the request path: WAL checkpoints (automatic ones are disabled, so a
 * commit never pays for one) and deletion of expired sessions in small batches, yielding to the event loop
 * between batches so requests are never stalled for long. The timers are unref'd: they never keep a process
 * alive. Returns a stop function.
 */
export function startMaintenance(db: SqliteDatabase, sessions: SessionStore, options: MaintenanceOptions = {}): () => void {
  const now = options.now ?? Date.now;
  const batch = 200;
  let stopped = false;

  const checkpoint = setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch (err) {
      options.onError?.('checkpoint', err);
    }
  }, options.checkpointIntervalMs ?? 10_000);
  checkpoint.unref();

  const sweepOnce = (total: number): void => {
    if (stopped) return;
    try {
      const n = sessions.sweepExpired(now(), batch);
      if (n === batch) {
        setImmediate(() => sweepOnce(total + n));
        return;
      }
      if (total + n > 0) options.onSweep?.(total + n);
    } catch (err) {
      options.onError?.('sweep', err);
    }
  };
  const sweep = setInterval(() => sweepOnce(0), options.sweepIntervalMs ?? 60_000);
  sweep.unref();

  return () => {
    stopped = true;
    clearInterval(checkpoint);
    clearInterval(sweep);
  };
}
