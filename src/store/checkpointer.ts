/*
 * WAL checkpoints on their own thread with their own connection. A checkpoint copies pages into the database
 * file and fsyncs it, which can take tens of milliseconds on a busy disk; on the event loop that would stall
 * every request in flight. PASSIVE mode never blocks the daemon's writers: they keep appending to the WAL
 * while the checkpoint runs.
 */

import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

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
const checkpoint = () => {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)');
    if (result && result.busy === 0) parentPort.postMessage({ frames: result.log });
  } catch (err) {
    parentPort.postMessage({ error: String(err && err.message || err) });
  }
};
const walSize = () => {
  try {
    return statSync(workerData.file + '-wal').size;
  } catch {
    return 0;
  }
};
// On the interval, and sooner when the WAL has grown past the threshold: a long WAL makes every read
// search a longer wal-index, so under a heavy write load it must not wait for the timer.
let last = Date.now();
const timer = setInterval(() => {
  if (Date.now() - last >= workerData.intervalMs || walSize() >= workerData.walBytes) {
    last = Date.now();
    checkpoint();
  }
}, Math.min(100, workerData.intervalMs));
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  try { db && db.close(); } catch {}
  parentPort.close();
});
`;

export interface Checkpointer {
  stop(): Promise<void>;
}

/** Checkpoint early once the WAL file is this large (SQLite's own automatic threshold is about 4 MiB). */
export const WAL_CHECKPOINT_BYTES = 4 * 1024 * 1024;

/**
 * @param onPass called after each completed pass with the frames in the WAL (its length, in pages).
 */
export function startCheckpointWorker(
  file: string,
  intervalMs: number,
  onError: (err: Error) => void,
  onPass: (frames: number) => void = () => undefined,
): Checkpointer {
  const require = createRequire(import.meta.url);
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { module: require.resolve('better-sqlite3'), file, intervalMs, walBytes: WAL_CHECKPOINT_BYTES },
  });
  worker.unref();
  worker.on('message', (message: { error?: string; frames?: number }) => {
    if (message.error) onError(new Error(message.error));
    else if (typeof message.frames === 'number') onPass(message.frames);
  });
  worker.on('error', onError);
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  return {
    async stop() {
      worker.postMessage('stop');
      const timer = setTimeout(() => void worker.terminate(), 2000);
      await exited;
      clearTimeout(timer);
    },
  };
}
