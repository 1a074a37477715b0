// Erasure on PostgreSQL, as far as the database can do it: a DELETE leaves the row's old version (a dead
// tuple) in the table's pages until VACUUM reclaims them, so after each deletion the tables that held text
// are vacuumed (coalesced: one VACUUM serves every deletion before it, never inside a request). What no
// VACUUM reaches: the text stays in WAL segments until PostgreSQL recycles them (after checkpoints), in WAL
// archives and in base backups (docs/data-flow.md says what the operator does about those); location.ts's
// erasureNote says it to the operator.

import type { PgDatabase } from './postgres-db.js';

export interface PgScrubber {
  /** Asks for a VACUUM after everything deleted so far; true once one finished, false when waitMs passed first. */
  request(waitMs?: number): Promise<boolean>;
  readonly pending: boolean;
  /** Stops retrying; whoever waits hears false. */
  close(): void;
}

/** The tables a deletion leaves dead text in. */
const TABLES = ['messages', 'sessions', 'response_settings', 'threads'];

/**
 * VACUUM FULL of the tables that hold text: each is rewritten from its live rows, so no copy of deleted text
 * stays in their pages' free space either (plain VACUUM only marks it reusable). It locks each table
 * exclusively while it is rewritten.
 */
export async function vacuumFull(db: PgDatabase): Promise<void> {
  for (const table of TABLES) await db.query(`VACUUM FULL ${table}`);
}

export function createPgScrubber(db: PgDatabase, onError?: (err: unknown) => void): PgScrubber {
  let waiters: Array<(done: boolean) => void> = [];
  let running = false;
  let delayMs = 0;
  let closed = false;

  const attempt = async () => {
    running = true;
    const served = waiters;
    waiters = [];
    let done = false;
    try {
      // VACUUM cannot run inside a transaction block: each table its own statement, outside any.
      for (const table of TABLES) await db.query(`VACUUM ${table}`);
      done = true;
    } catch (err) {
      onError?.(err);
    }
    running = false;
    if (done) {
      delayMs = 0;
      for (const w of served) w(true);
    } else {
      waiters = [...served, ...waiters];
      delayMs = Math.min(5000, Math.max(100, delayMs * 2));
    }
    if (waiters.length > 0) schedule();
  };
  const schedule = () => {
    if (running) return;
    if (closed) {
      for (const w of waiters.splice(0)) w(false);
      return;
    }
    running = true;
    const timer = setTimeout(() => void attempt(), delayMs);
    timer.unref();
  };

  return {
    get pending() {
      return waiters.length > 0;
    },
    close() {
      closed = true;
      if (!running) for (const w of waiters.splice(0)) w(false);
    },
    request(waitMs) {
      const done = new Promise<boolean>((resolve) => {
        waiters.push(resolve);
        schedule();
      });
      if (waitMs === undefined) return done;
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), waitMs);
        void done.then((ok) => {
          clearTimeout(timer);
          resolve(ok);
        });
      });
    },
  };
}
