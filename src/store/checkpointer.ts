/*
 * WAL checkpoints on their own thread with their own connection. A checkpoint copies pages into the database
 * file and fsyncs it, which can take tens of milliseconds on a busy disk; on the event loop that would stall
 * every request in flight (#21 measured 1-12 ms for a WAL of 2-30 pages, 100-130 ms for 12,000). PASSIVE mode
 * never blocks the daemon's writers: they keep appending to the WAL while the checkpoint runs.
 *
 * The thread is there only while the database is being written: its own V8 isolate and better-sqlite3 are
 * about 9 MiB of the daemon's RSS. It starts when this process's connection (or another process) has
 * committed since the last look, and ends once the WAL has stayed unchanged for a while, after a pass that
 * copied everything. Starting one costs about 100 ms of CPU (measured, mostly off the event loop), so the
 * quiet time it waits for is long enough that a chat load does not start one per turn.
 */

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { SqliteDatabase } from './database.js';

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { statSync } = require('node:fs');
const Database = require(workerData.module);
let db;
try {
  db = new Database(workerData.file);
  db.pragma('busy_timeout = 1000');
} catch (err) {
  parentPort.postMessage({ error: String(err && err.message || err) });
}
// Returns true when the pass copied the whole WAL.
const checkpoint = () => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    if (result && result.busy === 0) {
      parentPort.postMessage({ frames: result.log });
      return result.checkpointed === result.log;
    }
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
  return false;
};
const walSize = () => {
  try {
    return statSync(workerData.file + '-wal').size;
  } catch {
    return 0;
  }
};
// On the interval, and sooner when the WAL has grown by the threshold since the last pass: a long WAL makes
// every read search a longer wal-index, so under a heavy write load it must not wait for the timer. Growth,
// not size: the file stays long (a rewind reuses it from its beginning; journal_size_limit trims it only past
// 128 MiB), so its size alone made a pass, two fsyncs and the pages copied again, of every 100 ms tick (#21).
let last = Date.now();
let sizeAtPass = walSize();
const timer = setInterval(() => {
  const size = walSize();
  if (Date.now() - last >= workerData.intervalMs || size - sizeAtPass >= workerData.walBytes) {
    last = Date.now();
    sizeAtPass = size;
    checkpoint();
  }
}, Math.min(100, workerData.intervalMs));
const close = () => {
  clearInterval(timer);
  try { db && db.close(); } catch {}
  parentPort.close();
};
parentPort.on('message', (message) => {
  if (message === 'stop') close();
  // Nothing written for a while (the parent's look): end if this pass leaves nothing to copy. The pass
  // starts after the parent asked, so it copies every commit the parent had seen by then.
  else if (message === 'end' && checkpoint()) close();
});
// Started because something was written: the first pass at once.
if (db) checkpoint();
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/** Checkpoint early once the WAL has grown this much since the last pass (SQLite's own threshold: about 4 MiB). */
export const WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024;

/** The checkpoint thread ends after this many checkpoint intervals without a write (10 s by default). */
export const CHECKPOINT_IDLE_INTERVALS = 10;

export interface CheckpointerOptions {
  /** Called after each completed pass with the frames in the WAL (its length, in pages). */
  onPass?: (frames: number) => void;
  /** Called when the thread starts (true) and when it has ended (false). */
  onThread?: (running: boolean) => void;
}

/**
 * Checkpoints `file` every `intervalMs` on a worker thread while it is written (`db` is this process's
 * connection to it, read on the same interval to tell whether anything was committed).
 */
export function startCheckpointer(
  db: SqliteDatabase,
  file: string,
  intervalMs: number,
  onError: (err: Error) => void,
  options: CheckpointerOptions = {},
): Checkpointer {
  const require = createRequire(import.meta.url);
  const module = require.resolve('better-sqlite3');
  // total_changes(): rows this connection wrote since it opened; data_version: commits of other connections
  // (another process's `cs-llm` command). Either moving means the WAL has frames to copy.
  const written = db.prepare('SELECT total_changes() AS t, data_version AS v FROM pragma_data_version');
  let seen = '';
  let changedAt = Date.now();
  let worker: { thread: Worker; askEnd(now: string): void } | null = null;
  let exited: Promise<void> = Promise.resolve();
  let stopping = false;
  const idleMs = intervalMs * CHECKPOINT_IDLE_INTERVALS;

  const startWorker = () => {
    const thread = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { module, file, intervalMs, walBytes: WAL_CHECKPOINT_BYTES },
    });
    thread.unref();
    // What had been committed when this thread was last asked to end: once it has, everything up to that is
    // in the database file, and a look that reads anything else starts a new thread.
    let endAsked: string | null = null;
    thread.on('message', (message: { error?: string; frames?: number }) => {
      if (message.error) onError(new Error(message.error));
      else if (typeof message.frames === 'number') options.onPass?.(message.frames);
    });
    thread.on('error', onError);
    exited = new Promise<void>((resolve) =>
      thread.once('exit', () => {
        worker = null;
        // Ended on request: the commits seen then are copied, and the next look compares with them. A thread
        // that died otherwise leaves `seen` as it is: the next commit starts another (a crash is not retried
        // in a loop).
        if (endAsked !== null) seen = endAsked;
        options.onThread?.(false);
        resolve();
      }),
    );
    worker = { thread, askEnd: (now: string) => ((endAsked = now), thread.postMessage('end')) };
    options.onThread?.(true);
  };

  const look = () => {
    if (stopping) return;
    try {
      const row = written.get() as { t: number; v: number };
      const now = `${row.t}/${row.v}`;
      const changed = now !== seen;
      seen = now;
      if (changed) changedAt = Date.now();
      if (!worker) {
        if (changed) startWorker();
      } else if (Date.now() - changedAt >= idleMs) worker.askEnd(now);
    } catch (err) {
      onError(err as Error);
    }
  };
  const timer = setInterval(look, intervalMs);
  timer.unref();
  // At once: whatever opening the database (its migrations) or an earlier run left in the WAL.
  look();

  return {
    async stop() {
      stopping = true;
      clearInterval(timer);
      if (!worker) return;
      const { thread } = worker;
      thread.postMessage('stop');
      const kill = setTimeout(() => void thread.terminate(), 2000);
      await exited;
      clearTimeout(kill);
    },
  };
}
