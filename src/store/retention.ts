/*
 * Making deleted text really gone from the files. With `secure_delete` on (set on every connection the
 * SessionStore uses) SQLite overwrites deleted rows with zeros, but in WAL mode the zeroed pages and the
 * older pages that still hold the text sit in the WAL, and the database file keeps the text until a
 * checkpoint copies the zeroed pages over it. A TRUNCATE checkpoint copies every frame and then cuts the WAL
 * file to zero bytes: after it, the text is in neither file (FACTS.md §5, checked by test/compliance).
 *
 * A TRUNCATE checkpoint cannot finish while another connection reads an older snapshot or writes: then it
 * reports busy and is tried again.
 */

import type { SqliteDatabase } from './database.js';

export interface ScrubResult {
  done: boolean;
  /** WAL frames it could not copy or reset (0 when done). */
  remainingFrames: number;
}

/** One TRUNCATE checkpoint, waiting at most busyMs for other connections. */
export function scrubOnce(db: SqliteDatabase, busyMs: number): ScrubResult {
  const previous = db.pragma('busy_timeout', { simple: true }) as number;
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyMs))}`);
  try {
    const [row] = db.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
    if (!row) return { done: true, remainingFrames: 0 };
    return { done: row.busy === 0 && row.log <= 0, remainingFrames: Math.max(0, row.log - Math.max(0, row.checkpointed)) };
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_BUSY' || (err as { code?: string }).code === 'SQLITE_LOCKED')
      return { done: false, remainingFrames: -1 };
    throw err;
  } finally {
    db.pragma(`busy_timeout = ${previous}`);
  }
}

export interface Scrubber {
  /**
   * Asks for a TRUNCATE checkpoint after everything deleted so far. Resolves true once one finished, or false
   * when waitMs passed first (the scrubber keeps trying in the background until it succeeds).
   */
  request(waitMs?: number): Promise<boolean>;
  /** true while a scrub is asked for and not yet done. */
  readonly pending: boolean;
}

/**
 * Scrubs on the event loop but never inside a request: requests coalesce (one checkpoint serves every
 * deletion before it), each attempt waits at most a few milliseconds for other connections, and a busy
 * attempt is retried on a timer with backoff, up to 1 s apart. Timers never keep the process alive.
 */
export function createScrubber(db: SqliteDatabase, options: { onError?: (err: unknown) => void; busyMs?: number } = {}): Scrubber {
  let waiters: Array<(done: boolean) => void> = [];
  let scheduled: NodeJS.Timeout | NodeJS.Immediate | null = null;
  let delayMs = 0;

  const attempt = () => {
    scheduled = null;
    if (!db.open) {
      for (const w of waiters.splice(0)) w(false);
      return;
    }
    const served = waiters;
    waiters = [];
    let done = false;
    try {
      done = scrubOnce(db, options.busyMs ?? 20).done;
    } catch (err) {
      options.onError?.(err);
    }
    if (done) {
      delayMs = 0;
      for (const w of served) w(true);
      if (waiters.length > 0) schedule();
      return;
    }
    waiters = [...served, ...waiters];
    delayMs = Math.min(1000, Math.max(50, delayMs * 2));
    schedule();
  };

  const schedule = () => {
    if (scheduled) return;
    if (delayMs === 0) scheduled = setImmediate(attempt);
    else {
      const timer = setTimeout(attempt, delayMs);
      timer.unref();
      scheduled = timer;
    }
  };

  return {
    get pending() {
      return waiters.length > 0;
    },
    request(waitMs) {
      const done = new Promise<boolean>((resolve) => {
        waiters.push(resolve);
        schedule();
      });
      if (waitMs === undefined) return done;
      return new Promise<boolean>((resolve) => {
        // Kept referenced: a caller that waits for the answer keeps the process alive meanwhile (bounded).
        const timer = setTimeout(() => resolve(false), waitMs);
        void done.then((ok) => {
          clearTimeout(timer);
          resolve(ok);
        });
      });
    },
  };
}
