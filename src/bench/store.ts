import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openStore } from '../store/store.js';
import { percentile } from '../metrics/quantile.js';

export interface StoreBenchResult {
  sessions: number;
  messages: number;
  synchronous: 'NORMAL' | 'FULL';
  loadWindow: { p50Us: number; p99Us: number };
  appendTurn: { p50Us: number; p99Us: number };
}

/**
 * The store on its own, at a size: `sessions` sessions of 4 turns, then the last 8 turns of random sessions
 * loaded and single turns appended (each in its own transaction, as the daemon does).
 */
export function benchStore(sessions: number, synchronous: 'NORMAL' | 'FULL' = 'NORMAL', operations = 20_000): StoreBenchResult {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-bench-store-'));
  const store = openStore({ file: join(dir, 'bench.db'), synchronous });
  try {
    const now = Date.now();
    const turn = (i: number) => [
      { role: 'user', content: `Hello, this is message ${i}: where is my parcel? It was due on Monday.` },
      { role: 'assistant', content: 'I am sorry to hear that. Let me check the status of your order; could you give me the order number?' },
    ];
    const fill = store.db.transaction((from: number, to: number) => {
      for (let s = from; s < to; s++)
        for (let t = 0; t < 4; t++) store.sessions.appendTurn(`session-${s}`, 'default', turn(t), 3_600_000, now);
    });
    for (let s = 0; s < sessions; s += 10_000) fill(s, Math.min(sessions, s + 10_000));
    store.db.pragma('wal_checkpoint(TRUNCATE)');

    const pick = () => `session-${Math.floor(Math.random() * sessions)}`;
    const loads: number[] = [];
    for (let i = 0; i < operations; i++) {
      const id = pick();
      const t0 = performance.now();
      store.sessions.loadWindow(id, 8, now);
      loads.push((performance.now() - t0) * 1000);
    }
    const appends: number[] = [];
    for (let i = 0; i < Math.min(operations, synchronous === 'FULL' ? 2000 : operations); i++) {
      const id = pick();
      const t0 = performance.now();
      store.sessions.appendTurn(id, 'default', turn(i), 3_600_000, now);
      appends.push((performance.now() - t0) * 1000);
    }
    loads.sort((a, b) => a - b);
    appends.sort((a, b) => a - b);
    const messages = (store.db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;
    return {
      sessions,
      messages,
      synchronous,
      loadWindow: { p50Us: percentile(loads, 50), p99Us: percentile(loads, 99) },
      appendTurn: { p50Us: percentile(appends, 50), p99Us: percentile(appends, 99) },
    };
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
