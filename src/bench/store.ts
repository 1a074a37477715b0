import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { DEFAULT_TENANT } from '../core/tenant.js';
import { openSeededStore } from '../store/seed.js';
import { seedPostgresStore } from '../store/postgres-seed.js';
import type { Store } from '../store/store.js';
import { percentile } from '../metrics/quantile.js';

export interface StoreBenchResult {
  sessions: number;
  messages: number;
  synchronous: 'NORMAL' | 'FULL';
  loadWindow: { p50Us: number; p99Us: number };
  appendTurn: { p50Us: number; p99Us: number };
}

const TURN = (i: number) => [
  { role: 'user', content: `Hello, this is message ${i}: where is my parcel? It was due on Monday.` },
  { role: 'assistant', content: 'I am sorry to hear that. Let me check the status of your order; could you give me the order number?' },
];

/** A store file with `sessions` sessions of `turnsEach` turns (session-0 ...), a day to live: the daemon's database in the bench. */
export function seedStore(file: string, sessions: number, turnsEach: number): Promise<Store> {
  return openSeededStore({ file, synchronous: 'NORMAL' }, { sessions, turnsEach, turn: TURN, ttlMs: 86_400_000, now: Date.now() });
}

/** The same sessions in a PostgreSQL store (the bench's PostgreSQL daemon). */
export function seedPostgres(url: string, sessions: number, turnsEach: number): Promise<void> {
  return seedPostgresStore(url, { sessions, turnsEach, turn: TURN, ttlMs: 86_400_000, now: Date.now() });
}

/**
 * The store on its own, at a size (`npm run bench`): `sessions` sessions of 4 turns, then the last 8 turns of
 * random sessions loaded and single turns appended (each in its own transaction, as the daemon does),
 * through the Store's interface as the daemon calls it (the fill goes under it: src/store/seed.ts).
 */
export async function benchStore(
  sessions: number,
  synchronous: 'NORMAL' | 'FULL' = 'NORMAL',
  operations = 20_000,
): Promise<StoreBenchResult> {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-bench-store-'));
  const now = Date.now();
  const turn = TURN;
  try {
    const store = await openSeededStore(
      { file: join(dir, 'bench.db'), synchronous },
      { sessions, turnsEach: 4, turn, ttlMs: 3_600_000, now },
    );
    try {
      return await measure(store);
    } finally {
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  async function measure(store: Store): Promise<StoreBenchResult> {
    const pick = () => `session-${Math.floor(Math.random() * sessions)}`;
    const loads: number[] = [];
    for (let i = 0; i < operations; i++) {
      const id = pick();
      const t0 = performance.now();
      await store.sessions.loadWindow(DEFAULT_TENANT, id, 8, now);
      loads.push((performance.now() - t0) * 1000);
    }
    const appends: number[] = [];
    for (let i = 0; i < Math.min(operations, synchronous === 'FULL' ? 2000 : operations); i++) {
      const id = pick();
      const t0 = performance.now();
      await store.sessions.appendTurn(DEFAULT_TENANT, id, 'default', turn(i), 3_600_000, now);
      appends.push((performance.now() - t0) * 1000);
    }
    loads.sort((a, b) => a - b);
    appends.sort((a, b) => a - b);
    const messages = await store.stats.messageCount();
    return {
      sessions,
      messages,
      synchronous,
      loadWindow: { p50Us: percentile(loads, 50), p99Us: percentile(loads, 99) },
      appendTurn: { p50Us: percentile(appends, 50), p99Us: percentile(appends, 99) },
    };
  }
}
