/*
 * Usage and cost accounting (docs/cost-and-capacity.md). Each upstream reply adds its tokens and their cost
 * to the in-memory ledger (no I/O on the request path); a timer spreads time-based costs (GPU power at
 * electricityPerKWh, a monthly amount) and writes the ledger's sums to the store every store.usageFlushMs;
 * /metrics reads the running totals when scraped.
 */

import { Counter, type Registry } from '../../metrics/prom-client.js';
import type { PriceConfig } from '../../core/upstream-config.js';
import type { Store } from '../../store/store.js';
import { hasTimeCost, timeCost, tokenCost, type TokenCounts } from './cost.js';
import { UsageLedger, type UsageTotal } from './ledger.js';

export interface PricedUpstream {
  name: string;
  price: PriceConfig | undefined;
}

/** One upstream reply's usage. */
export interface UsageEvent {
  upstream: PricedUpstream;
  /** The model name the client asked for ('' when it named none and the engine's was not known). */
  model: string;
  tenant: string;
  /** The API key's public prefix; '' without a key. */
  keyId: string;
  /** This reply is the first of a new session's first turn. */
  sessionStarted: boolean;
  tokens: TokenCounts;
}

/** A GPU's power now (the GPU sampler's latest line). */
export interface PowerReading {
  index: number;
  powerW: number | null;
}

export interface AccountingOptions {
  store: Pick<Store, 'usage'>;
  upstreams: readonly PricedUpstream[];
  flushMs: number;
  /** The GPUs' power now, for electricityPerKWh; none: no power is counted. */
  power?: () => readonly PowerReading[];
  /** How often GPU power is read and time-based cost is summed (default 1000 ms, at most flushMs). */
  tickMs?: number;
  log: (message: string, ...details: unknown[]) => void;
  now?: () => number;
}

export interface Accounting {
  record(event: UsageEvent): void;
  /** Puts the cost, token and session counters on a /metrics registry. */
  register(registry: Registry): void;
  /** Sums time-based cost up to now and writes everything summed to the store (the flush timer does it too). */
  flush(): Promise<void>;
  /** A last flush; the timers stop. */
  close(): Promise<void>;
}

export function startAccounting(options: AccountingOptions): Accounting {
  const now = options.now ?? Date.now;
  const ledger = new UsageLedger(now);
  const { log } = options;
  const timed = options.upstreams.filter((u) => hasTimeCost(u.price));
  /** Time-based cost per upstream since the last spread. */
  const accrued = new Map<string, number>(timed.map((u) => [u.name, 0]));
  const warnedNoPower = new Set<string>();
  let lastTick = now();

  const tick = () => {
    const at = now();
    const ms = at - lastTick;
    lastTick = at;
    if (ms <= 0 || timed.length === 0) return;
    const readings = options.power?.() ?? [];
    for (const u of timed) {
      let watts: number | null = null;
      if (u.price!.electricityPerKWh !== undefined) {
        const gpus = u.price!.gpus;
        for (const r of readings) {
          if (r.powerW === null || (gpus !== undefined && !gpus.includes(r.index))) continue;
          watts = (watts ?? 0) + r.powerW;
        }
        if (watts === null && !warnedNoPower.has(u.name)) {
          warnedNoPower.add(u.name);
          log(
            `upstream ${u.name} has price.electricityPerKWh but no GPU power reading (nvidia-smi): its power is not counted until one comes`,
          );
        }
      }
      accrued.set(u.name, accrued.get(u.name)! + timeCost(u.price, ms, watts));
    }
  };

  let writing: Promise<void> = Promise.resolve();
  const flush = (): Promise<void> => {
    tick();
    for (const u of timed) {
      ledger.spread(u.name, u.price!.currency, accrued.get(u.name)!);
      accrued.set(u.name, 0);
    }
    // One write at a time: a slow one delays the next instead of racing it.
    writing = writing.then(async () => {
      const rows = ledger.take();
      if (rows.length === 0) return;
      try {
        await options.store.usage.add(rows);
      } catch (err) {
        ledger.restore(rows);
        log('writing the usage aggregates failed; they are kept and written with the next flush', (err as Error).message);
      }
    });
    return writing;
  };

  const tickMs = Math.min(options.tickMs ?? 1000, options.flushMs);
  const ticker = timed.length > 0 ? setInterval(tick, tickMs) : null;
  ticker?.unref();
  const flusher = setInterval(() => void flush(), options.flushMs);
  flusher.unref();

  return {
    record(e) {
      const price = e.upstream.price;
      ledger.add(
        { upstream: e.upstream.name, model: e.model, tenant: e.tenant, keyId: e.keyId, currency: price?.currency ?? '' },
        {
          requests: 1,
          sessions: e.sessionStarted ? 1 : 0,
          promptTokens: e.tokens.prompt,
          cachedTokens: e.tokens.cached,
          completionTokens: e.tokens.completion,
          cost: tokenCost(price, e.tokens),
        },
      );
    },
    register: (registry) => registerCounters(registry, ledger.totals),
    flush,
    async close() {
      if (ticker) clearInterval(ticker);
      clearInterval(flusher);
      await flush();
    },
  };
}

/** Counters that catch up with the ledger's running totals when /metrics is scraped. */
function registerCounters(registry: Registry, totals: ReadonlyMap<string, UsageTotal>): void {
  const reported = new Map<UsageTotal, UsageTotal>();
  const seen = (t: UsageTotal): UsageTotal => {
    let r = reported.get(t);
    if (!r) reported.set(t, (r = { ...t, cost: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0, sessions: 0 }));
    return r;
  };
  new Counter({
    name: 'cs_llm_cost_total',
    help: 'Money spent on upstream engines, in the currency of their price (token prices, and time-based cost of local engines), by upstream and tenant.',
    labelNames: ['upstream', 'tenant', 'currency'],
    registers: [registry],
    collect() {
      for (const t of totals.values()) {
        if (t.currency === '') continue;
        const r = seen(t);
        const delta = t.cost - r.cost;
        r.cost = t.cost;
        // inc by 0 still creates the series: a priced upstream shows from its first reply on.
        this.inc({ upstream: t.upstream, tenant: t.tenant, currency: t.currency }, Math.max(0, delta));
      }
    },
  });
  new Counter({
    name: 'cs_llm_tokens_total',
    help: 'Tokens of upstream replies by upstream, tenant and type: prompt, cached_prompt (of prompt, served from the engine cache), completion.',
    labelNames: ['upstream', 'tenant', 'type'],
    registers: [registry],
    collect() {
      for (const t of totals.values()) {
        const r = seen(t);
        const pairs: Array<[string, 'promptTokens' | 'cachedTokens' | 'completionTokens']> = [
          ['prompt', 'promptTokens'],
          ['cached_prompt', 'cachedTokens'],
          ['completion', 'completionTokens'],
        ];
        for (const [type, field] of pairs) {
          const delta = t[field] - r[field];
          r[field] = t[field];
          if (delta > 0) this.inc({ upstream: t.upstream, tenant: t.tenant, type }, delta);
        }
      }
    },
  });
  new Counter({
    name: 'cs_llm_sessions_started_total',
    help: 'Sessions whose first turn was answered, by tenant (the denominator of cost per 1k sessions).',
    labelNames: ['tenant'],
    registers: [registry],
    collect() {
      for (const t of totals.values()) {
        const r = seen(t);
        const delta = t.sessions - r.sessions;
        r.sessions = t.sessions;
        if (delta > 0) this.inc({ tenant: t.tenant }, delta);
      }
    },
  });
}
