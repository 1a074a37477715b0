/*
 * What holds the daemon's event loop up, for /metrics: the longest event-loop delay between two scrapes
 * (perf_hooks monitorEventLoopDelay), and the store's waits for another process's database lock, which run on
 * timers instead of blocking the loop (src/store/lock-wait.ts). A stalled /healthz or stream shows in the
 * first; whether the database was the cause, in the second.
 */

import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, type Registry } from '../metrics/prom-client.js';
import type { Store } from '../store/store.js';

/** Sampling interval of the event-loop delay monitor: finer than the 50 ms a request may be held up. */
const RESOLUTION_MS = 10;

export interface RuntimeMetrics {
  /** Reads the current figures into the registry (call before rendering a scrape). */
  refresh(): Promise<void>;
  close(): void;
}

export function createRuntimeMetrics(registry: Registry, store: Pick<Store, 'stats'>): RuntimeMetrics {
  const registers = [registry];
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  const delayMax = new Gauge({
    name: 'cs_llm_event_loop_delay_max_seconds',
    help: `Longest the event loop was held up since the previous scrape, as a ${RESOLUTION_MS} ms timer saw it (the value includes that interval): every request and stream waits that long.`,
    registers,
  });
  const waiting = new Gauge({
    name: 'cs_llm_store_lock_waiting',
    help: 'Store operations waiting (on timers, not on the event loop) for a database lock another process holds.',
    registers,
  });
  let waits = 0;
  let timeouts = 0;
  new Counter({
    name: 'cs_llm_store_lock_waits_total',
    help: 'Store operations that found the database locked by another process and waited for it.',
    registers,
    collect() {
      this.reset();
      this.inc(waits);
    },
  });
  new Counter({
    name: 'cs_llm_store_lock_timeouts_total',
    help: "Store operations that gave up after store.busyTimeoutMs of waiting for another process's lock (a turn: store_failed).",
    registers,
    collect() {
      this.reset();
      this.inc(timeouts);
    },
  });
  return {
    async refresh() {
      // No sample yet (a scrape right after the previous one): nothing was held up for a whole interval.
      delayMax.set(delay.count > 0 ? delay.max / 1e9 : 0);
      delay.reset();
      const locks = await store.stats.lockWaits();
      waiting.set(locks.waiting);
      waits = locks.waits;
      timeouts = locks.timeouts;
    },
    close() {
      delay.disable();
    },
  };
}
