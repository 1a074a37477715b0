// Waiting for another connection's lock without stalling the event loop. better-sqlite3 runs every statement
// on the calling thread, and SQLite's own lock wait (busy_timeout) sleeps there: with the old 5 s busy_timeout,
// a write lock held by another process (a CLI command, a backup, sqlite3) froze every request and stream for as
// long as it was held. Even a short busy_timeout blocks for longer than it says on a busy machine, because
// SQLite waits in a few sleeps and each can overrun: measured on the loaded 2-core host (load average 10, 40
// tries each against a held BEGIN IMMEDIATE), busy_timeout 10 blocked p50 11 ms / p90 44 ms / max 84 ms,
// busy_timeout 0 p50 0.04 ms. So the connection does not wait inside SQLite at all (busy_timeout 0): a call
// that finds the lock taken is tried again on a timer, with backoff, until the lock is free or maxWaitMs has
// passed, and the event loop serves everything else in between. Writes keep their order: a write that
// arrives while others wait queues behind them, and one attempt per timer tries the lock.

import { EnvironmentError } from '../core/errors.js';

/** How long one attempt waits inside SQLite for another connection's lock (the connection's busy_timeout). */
export const LOCK_POLL_MS = 0;
const FIRST_RETRY_MS = 5;
const LONGEST_RETRY_MS = 100;
/** After this long draining the queue in one go, the rest waits for the next turn of the event loop. */
const SLICE_MS = 10;

/** SQLITE_BUSY or SQLITE_LOCKED (and their extended codes): another connection holds what this one needs. */
export function isLockError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
}

/** What the lock waits have been so far (the daemon's /metrics). */
export interface LockWaitStats {
  /** Calls waiting for a lock now. */
  waiting: number;
  /** Calls that found the database locked and waited (on timers), since the store was opened. */
  waits: number;
  /** Calls that gave up after maxWaitMs. */
  timeouts: number;
}

export interface LockWait {
  /** Runs a write now or, while earlier writes wait for a lock, after them. Settles with its result or error. */
  write<T>(op: () => T): Promise<T>;
  /** Runs a read now; one that finds the database locked is tried again on a timer (reads never queue). */
  read<T>(op: () => T): Promise<T>;
  stats(): LockWaitStats;
  /** Rejects what is waiting (the connection is closing). */
  close(): void;
}

interface Waiter {
  op: () => unknown;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  deadline: number;
}

export function createLockWait(options: { file: string; maxWaitMs: number; now?: () => number }): LockWait {
  const now = options.now ?? (() => performance.now());
  const queue: Waiter[] = [];
  let timer: NodeJS.Timeout | null = null;
  let delayMs = 0;
  let closed = false;
  let readsWaiting = 0;
  let waits = 0;
  let timeouts = 0;

  const timedOut = (err: unknown) => {
    timeouts++;
    return new EnvironmentError(`database file ${options.file} stayed locked by another process for ${options.maxWaitMs} ms`, {
      next: 'Find what holds it (sqlite3, a backup, a cs-llm command of another version) and let it finish; store.busyTimeoutMs sets how long to wait.',
      cause: err,
    });
  };
  const closedError = () => new EnvironmentError(`database file ${options.file} was closed before this operation could run`);

  const schedule = (ms: number) => {
    if (timer || closed) return;
    timer = setTimeout(drain, ms);
  };

  /** Runs queued writes in order until one finds the lock taken (then waits) or the slice is used up. */
  function drain(): void {
    timer = null;
    const sliceEnd = now() + SLICE_MS;
    while (queue.length > 0) {
      const head = queue[0]!;
      let value: unknown;
      try {
        value = head.op();
      } catch (err) {
        if (!isLockError(err)) {
          queue.shift();
          head.reject(err);
          continue;
        }
        // Still locked. Whoever has waited long enough gives up; nobody else tries in this turn.
        const at = now();
        for (let i = queue.length - 1; i >= 0; i--) {
          if (queue[i]!.deadline <= at) queue.splice(i, 1)[0]!.reject(timedOut(err));
        }
        delayMs = Math.min(LONGEST_RETRY_MS, Math.max(FIRST_RETRY_MS, delayMs * 2));
        if (queue.length > 0) schedule(delayMs);
        return;
      }
      queue.shift();
      delayMs = 0;
      head.resolve(value);
      if (now() >= sliceEnd && queue.length > 0) {
        schedule(0);
        return;
      }
    }
  }

  return {
    stats: () => ({ waiting: queue.length + readsWaiting, waits, timeouts }),
    write<T>(op: () => T): Promise<T> {
      if (closed) return Promise.reject(closedError());
      if (queue.length === 0) {
        try {
          return Promise.resolve(op());
        } catch (err) {
          if (!isLockError(err)) return Promise.reject(err);
        }
      }
      waits++;
      return new Promise<T>((resolve, reject) => {
        queue.push({ op, resolve: resolve as (value: unknown) => void, reject, deadline: now() + options.maxWaitMs });
        delayMs = Math.max(delayMs, FIRST_RETRY_MS);
        schedule(delayMs);
      });
    },
    read<T>(op: () => T): Promise<T> {
      if (closed) return Promise.reject(closedError());
      try {
        return Promise.resolve(op());
      } catch (err) {
        if (!isLockError(err)) return Promise.reject(err);
      }
      waits++;
      readsWaiting++;
      const deadline = now() + options.maxWaitMs;
      return new Promise<T>((resolve, reject) => {
        let wait = FIRST_RETRY_MS;
        const settle = (fn: () => void) => {
          readsWaiting--;
          fn();
        };
        const attempt = () => {
          if (closed) return settle(() => reject(closedError()));
          try {
            const value = op();
            settle(() => resolve(value));
          } catch (err) {
            if (!isLockError(err)) settle(() => reject(err));
            else if (now() >= deadline) settle(() => reject(timedOut(err)));
            else {
              wait = Math.min(LONGEST_RETRY_MS, wait * 2);
              setTimeout(attempt, wait);
            }
          }
        };
        setTimeout(attempt, wait);
      });
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = null;
      for (const w of queue.splice(0)) w.reject(closedError());
    },
  };
}
