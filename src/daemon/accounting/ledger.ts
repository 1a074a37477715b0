/*
 * The usage aggregates in memory between two flushes: one row per UTC day, upstream, model, tenant, key and
 * currency, summed as upstream replies end (a map lookup and a few additions per reply), handed to the store
 * by take(). Time-based costs (power, a monthly amount) are spread over the rows of the interval by their
 * tokens. Also keeps the running totals /metrics exports. Pure state plus an injected clock.
 */

import type { UsageRow } from '../../store/usage.js';

/** Model and tenant of time-based cost in an interval without traffic. */
export const IDLE = '(idle)';

export interface UsageKey {
  upstream: string;
  model: string;
  tenant: string;
  keyId: string;
  currency: string;
}

export interface UsageAmounts {
  requests: number;
  sessions: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  cost: number;
}

/** Running totals per (upstream, tenant, currency), for the counters of /metrics. */
export interface UsageTotal {
  upstream: string;
  tenant: string;
  currency: string;
  cost: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  sessions: number;
}

type PendingRow = UsageRow & { intervalTokens: number };

const DAY_MS = 86_400_000;

export class UsageLedger {
  private pending = new Map<string, PendingRow>();
  readonly totals = new Map<string, UsageTotal>();
  private day = '';
  private dayEndsAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly now: () => number = Date.now) {}

  /** Today's UTC date, recomputed only when a day ends. */
  private today(): string {
    const now = this.now();
    if (now >= this.dayEndsAt || now < this.dayEndsAt - DAY_MS) {
      const start = now - (now % DAY_MS);
      this.day = new Date(start).toISOString().slice(0, 10);
      this.dayEndsAt = start + DAY_MS;
    }
    return this.day;
  }

  private row(k: UsageKey): PendingRow {
    const day = this.today();
    const id = `${day}\u0000${k.upstream}\u0000${k.model}\u0000${k.tenant}\u0000${k.keyId}\u0000${k.currency}`;
    let row = this.pending.get(id);
    if (row === undefined) {
      row = {
        day,
        ...k,
        requests: 0,
        sessions: 0,
        promptTokens: 0,
        cachedTokens: 0,
        completionTokens: 0,
        cost: 0,
        intervalTokens: 0,
      };
      this.pending.set(id, row);
    }
    return row;
  }

  private total(k: Pick<UsageKey, 'upstream' | 'tenant' | 'currency'>): UsageTotal {
    const id = `${k.upstream}\u0000${k.tenant}\u0000${k.currency}`;
    let total = this.totals.get(id);
    if (total === undefined) {
      total = {
        upstream: k.upstream,
        tenant: k.tenant,
        currency: k.currency,
        cost: 0,
        promptTokens: 0,
        cachedTokens: 0,
        completionTokens: 0,
        sessions: 0,
      };
      this.totals.set(id, total);
    }
    return total;
  }

  add(k: UsageKey, a: UsageAmounts): void {
    const row = this.row(k);
    row.requests += a.requests;
    row.sessions += a.sessions;
    row.promptTokens += a.promptTokens;
    row.cachedTokens += a.cachedTokens;
    row.completionTokens += a.completionTokens;
    row.cost += a.cost;
    row.intervalTokens += a.promptTokens + a.completionTokens;
    const total = this.total(k);
    total.cost += a.cost;
    total.promptTokens += a.promptTokens;
    total.cachedTokens += a.cachedTokens;
    total.completionTokens += a.completionTokens;
    total.sessions += a.sessions;
  }

  /**
   * Spreads `cost` (an upstream's time-based cost since the last call) over that upstream's rows by the tokens
   * each had since then; with no traffic it goes to an (idle) row. Starts the next interval.
   */
  spread(upstream: string, currency: string, cost: number): void {
    let tokens = 0;
    for (const row of this.pending.values()) if (row.upstream === upstream && row.currency === currency) tokens += row.intervalTokens;
    if (tokens === 0) {
      if (cost > 0) {
        const k = { upstream, model: IDLE, tenant: IDLE, keyId: '', currency };
        this.row(k).cost += cost;
        this.total(k).cost += cost;
      }
      return;
    }
    for (const row of this.pending.values()) {
      if (row.upstream !== upstream || row.currency !== currency || row.intervalTokens === 0) continue;
      const share = (cost * row.intervalTokens) / tokens;
      row.cost += share;
      this.total(row).cost += share;
      row.intervalTokens = 0;
    }
  }

  /** The rows summed since the last take (for the store); the ledger starts empty again. */
  take(): UsageRow[] {
    const rows: UsageRow[] = [];
    for (const { intervalTokens: _, ...row } of this.pending.values()) rows.push(row);
    this.pending = new Map();
    return rows;
  }

  /** Rows a failed write did not store: added back, to be written with the next flush. */
  restore(rows: readonly UsageRow[]): void {
    for (const r of rows) {
      const { day: _, requests, sessions, promptTokens, cachedTokens, completionTokens, cost, ...k } = r;
      const id = `${r.day}\u0000${k.upstream}\u0000${k.model}\u0000${k.tenant}\u0000${k.keyId}\u0000${k.currency}`;
      const row = this.pending.get(id);
      if (row === undefined) {
        this.pending.set(id, { ...r, intervalTokens: 0 });
        continue;
      }
      row.requests += requests;
      row.sessions += sessions;
      row.promptTokens += promptTokens;
      row.cachedTokens += cachedTokens;
      row.completionTokens += completionTokens;
      row.cost += cost;
    }
  }

  get size(): number {
    return this.pending.size;
  }
}
