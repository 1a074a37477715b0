import { DEFAULT_TENANT } from '../core/tenant.js';
import { openSqliteStore } from './sqlite-store.js';
import type { OpenStoreOptions, Store } from './interface.js';

// A store filled to a size in one go, for measurements (src/bench/store.ts): many turns to a transaction
// under the interface, so a store of 100,000 sessions is made in seconds instead of a turn at a time.

/** Opens the store and adds `sessions` sessions of `turns(i)` for i in [0, turnsEach), all at `now`. */
export async function openSeededStore(
  options: OpenStoreOptions,
  seed: { sessions: number; turnsEach: number; turn: (i: number) => Array<{ role: string; content: string }>; ttlMs: number; now: number },
): Promise<Store> {
  const { store, db, sessions } = openSqliteStore(options);
  try {
    const fill = db.transaction((from: number, to: number) => {
      for (let s = from; s < to; s++)
        for (let t = 0; t < seed.turnsEach; t++)
          sessions.appendTurn(DEFAULT_TENANT, `session-${s}`, 'default', seed.turn(t), seed.ttlMs, seed.now);
    });
    for (let s = 0; s < seed.sessions; s += 10_000) fill(s, Math.min(seed.sessions, s + 10_000));
    db.pragma('wal_checkpoint(TRUNCATE)');
    return store;
  } catch (err) {
    await store.close();
    throw err;
  }
}
