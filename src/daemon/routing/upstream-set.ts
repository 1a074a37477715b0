/*
 * The upstream engines and what the daemon knows about their health. Pure state plus an injected clock; the
 * HTTP work is in failover.ts.
 *
 * - Overload (429/503): the upstream is skipped until its Retry-After (default 1 s) passed, while another can
 *   serve the request. Not a failure.
 * - Failures (connection errors, timeouts, other 5xx) in a row: after `ejectAfter` of them the upstream is
 *   ejected for `ejectBaseMs`, doubling with each ejection in a row (up to 10x). Once that passed it is on
 *   probation: one request at a time may try it (a passive probe); a success restores it, a failure ejects
 *   it again for longer.
 */

import type { PriceConfig } from '../../core/upstream-config.js';
import { marginalCost } from '../accounting/cost.js';
import type { Upstream } from '../upstream.js';
import { UpstreamBudget, type BudgetLimits } from './budget.js';

export interface MemberSpec {
  name: string;
  kind: 'local' | 'remote';
  /** Personal data is masked in what goes to it, and restored in its replies. */
  mask?: boolean;
  weight: number;
  /** The client's model name -> this upstream's. */
  models: Record<string, string>;
  client: Upstream;
  /** What it costs (accounting; cheapest routing). */
  price?: PriceConfig | undefined;
  /** Its provider's rate limits (upstreams[].limits): kept under by choosing another upstream. */
  limits?: BudgetLimits | undefined;
}

/** A request's size before it is sent: prompt tokens estimated from its bytes, the reply's max_tokens if it set one. */
export interface TokenEstimate {
  prompt: number;
  completion: number | null;
}

export class UpstreamMember {
  readonly name: string;
  readonly kind: 'local' | 'remote';
  readonly mask: boolean;
  readonly weight: number;
  readonly models: Record<string, string>;
  readonly hasModelMap: boolean;
  readonly client: Upstream;
  readonly price: PriceConfig | undefined;
  /** Null without limits. */
  readonly budget: UpstreamBudget | null;
  consecutiveFailures = 0;
  /** Ejections in a row (the cool-down grows with it). */
  ejections = 0;
  ejectedUntil = 0;
  overloadedUntil = 0;
  /** After an ejection: only one request at a time until one succeeds. */
  probation = false;
  probeInFlight = false;

  constructor(spec: MemberSpec) {
    this.name = spec.name;
    this.kind = spec.kind;
    this.mask = spec.mask === true;
    this.weight = spec.weight;
    this.models = spec.models;
    this.hasModelMap = Object.keys(spec.models).length > 0;
    this.client = spec.client;
    this.price = spec.price;
    this.budget = spec.limits ? new UpstreamBudget(spec.limits) : null;
  }

  /** A request's tokens on this upstream: its reply estimated from this upstream's recent replies without max_tokens. */
  tokensFor(estimate: TokenEstimate | null): number {
    if (estimate === null) return 0;
    return estimate.prompt + (estimate.completion ?? this.budget?.completionAverage ?? 0);
  }

  /** Whether its budget has room for the request now (always, without limits). */
  fits(now: number, estimate: TokenEstimate | null): boolean {
    return this.budget === null || this.budget.fits(now, this.tokensFor(estimate));
  }

  /** What the request would cost here (cheapest routing): its tokens at the token prices; 0 without. */
  costOf(estimate: TokenEstimate): number {
    return marginalCost(this.price, estimate.prompt, estimate.completion ?? this.budget?.completionAverage ?? 0);
  }

  get url(): string {
    return this.client.url;
  }

  ejected(now: number): boolean {
    return now < this.ejectedUntil;
  }

  overloaded(now: number): boolean {
    return now < this.overloadedUntil;
  }

  /** Healthy enough to send a request to now. */
  available(now: number): boolean {
    return now >= this.ejectedUntil && now >= this.overloadedUntil && !(this.probation && this.probeInFlight);
  }
}

export interface UpstreamSetOptions {
  ejectAfter: number;
  ejectBaseMs: number;
  sticky: boolean;
  /** weighted: by weight; cheapest: the lowest price among those with budget, by weight among equals. */
  routing?: 'weighted' | 'cheapest';
  now?: () => number;
  random?: () => number;
  /** An upstream was taken out (for the metrics and the log). */
  onEject?: (member: UpstreamMember, forMs: number) => void;
}

/** FNV-1a, for sticky choice: the same session id picks the same upstream while it is healthy. */
function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class UpstreamSet {
  readonly members: UpstreamMember[];
  /** Some upstream has rate limits: requests may wait for budget (budget-queue.ts). */
  readonly budgeted: boolean;
  /** Requests need a token estimate: some upstream limits tokens, or routing is cheapest. */
  readonly needsEstimate: boolean;
  private readonly options: UpstreamSetOptions;
  readonly now: () => number;
  private readonly random: () => number;

  constructor(members: UpstreamMember[], options: UpstreamSetOptions) {
    if (members.length === 0) throw new Error('an upstream set needs at least one upstream');
    this.members = members;
    this.options = options;
    this.now = options.now ?? Date.now;
    this.random = options.random ?? Math.random;
    this.budgeted = members.some((m) => m.budget !== null);
    this.needsEstimate = options.routing === 'cheapest' || members.some((m) => m.budget?.countsTokens === true);
  }

  /** Whether some upstream has budget for the request now (health aside: pick() handles that). */
  anyFits(estimate: TokenEstimate | null): boolean {
    const now = this.now();
    return this.members.some((m) => m.fits(now, estimate));
  }

  /** Milliseconds until some upstream has budget for the request. */
  budgetFreeInMs(estimate: TokenEstimate | null): number {
    const now = this.now();
    let soonest = Number.POSITIVE_INFINITY;
    for (const m of this.members) soonest = Math.min(soonest, m.budget ? m.budget.freeInMs(now, m.tokensFor(estimate)) : 0);
    return soonest;
  }

  byName(name: string): UpstreamMember | undefined {
    return this.members.find((m) => m.name === name);
  }

  /**
   * The upstream for the next attempt, not one of `tried`: weighted among the available ones (weight 0 ones
   * only when no other is), sticky per session when configured. Retry-After only steers this choice: when no
   * upstream is available, the first attempt still goes to the one that frees up first, ejected or
   * overloaded (Envoy's panic mode), so a busy engine answers for itself and never takes the daemon offline.
   * A retry never goes to an overloaded upstream. An upstream without budget for the request is never picked.
   * With cheapest routing, the lowest price among the available ones decides first. Null when none is left.
   */
  pick(sessionId: string | null, tried: readonly UpstreamMember[] | null, estimate: TokenEstimate | null = null): UpstreamMember | null {
    const now = this.now();
    const members = this.members;
    const first = tried === null || tried.length === 0;
    if (members.length === 1) {
      // The common case, kept cheap: the only upstream is always asked once (while it has budget).
      return first && members[0]!.fits(now, estimate) ? members[0]! : null;
    }
    let candidates: UpstreamMember[] = [];
    let fallback: UpstreamMember | null = null;
    let fallbackFreeAt = Number.POSITIVE_INFINITY;
    for (const m of members) {
      if (tried?.includes(m) || !m.fits(now, estimate)) continue;
      if (m.available(now)) candidates.push(m);
      else if (first || !m.overloaded(now)) {
        const freeAt = Math.max(m.ejectedUntil, m.overloadedUntil);
        if (freeAt < fallbackFreeAt) {
          fallback = m;
          fallbackFreeAt = freeAt;
        }
      }
    }
    if (candidates.length === 0) return fallback;
    const weighted = candidates.filter((m) => m.weight > 0);
    if (weighted.length > 0) candidates = weighted;
    if (this.options.routing === 'cheapest' && candidates.length > 1) candidates = cheapestOf(candidates, estimate);
    if (candidates.length === 1) return candidates[0]!;
    if (this.options.sticky && sessionId !== null) {
      // Rendezvous hashing: each session prefers one upstream, and only moves when that one is out.
      let best: UpstreamMember | null = null;
      let bestScore = -1;
      for (const m of candidates) {
        const score = (hash(`${sessionId}\u0000${m.name}`) / 4294967296) ** (1 / Math.max(m.weight, 1e-9));
        if (score > bestScore) {
          best = m;
          bestScore = score;
        }
      }
      return best;
    }
    let total = 0;
    for (const m of candidates) total += m.weight > 0 ? m.weight : 1;
    let r = this.random() * total;
    for (const m of candidates) {
      r -= m.weight > 0 ? m.weight : 1;
      if (r < 0) return m;
    }
    return candidates[candidates.length - 1]!;
  }

  /** Marks the start of a request to `member` (a probe when it is on probation). */
  begin(member: UpstreamMember): void {
    if (member.probation) member.probeInFlight = true;
  }

  success(member: UpstreamMember): void {
    member.consecutiveFailures = 0;
    member.ejections = 0;
    member.probation = false;
    member.probeInFlight = false;
  }

  /** A request ended without a verdict (the client left): a probe slot is freed. */
  release(member: UpstreamMember): void {
    member.probeInFlight = false;
  }

  failure(member: UpstreamMember): void {
    const now = this.now();
    member.probeInFlight = false;
    member.consecutiveFailures++;
    if (member.probation || member.consecutiveFailures >= this.options.ejectAfter) {
      const forMs = this.options.ejectBaseMs * Math.min(10, 2 ** member.ejections);
      member.ejections++;
      member.ejectedUntil = now + forMs;
      member.probation = true;
      member.consecutiveFailures = 0;
      this.options.onEject?.(member, forMs);
    }
  }

  /** 429 or 503: prefer the others until Retry-After passed. */
  overload(member: UpstreamMember, retryAfterMs: number): void {
    member.probeInFlight = false;
    member.overloadedUntil = Math.max(member.overloadedUntil, this.now() + retryAfterMs);
  }

  /** Milliseconds until the first overloaded upstream takes requests again (for the client's Retry-After). */
  overloadEndsInMs(): number {
    const now = this.now();
    let soonest = Number.POSITIVE_INFINITY;
    for (const m of this.members) if (m.overloadedUntil > now) soonest = Math.min(soonest, m.overloadedUntil - now);
    return Number.isFinite(soonest) ? soonest : 1000;
  }
}

/** The candidates with the lowest cost for the request (several when their prices tie). */
function cheapestOf(candidates: UpstreamMember[], estimate: TokenEstimate | null): UpstreamMember[] {
  const size = estimate ?? { prompt: 1000, completion: null };
  const costs = candidates.map((m) => m.costOf(size));
  const least = Math.min(...costs);
  // Prices are decimals: equal within a part in a billion.
  return candidates.filter((_, i) => costs[i]! <= least + Math.abs(least) * 1e-9);
}

/** Retry-After as milliseconds: seconds or an HTTP date; unusable or absent -> the fallback. */
export function retryAfterMs(value: unknown, now: number, fallbackMs = 1000): number {
  const text = Array.isArray(value) ? value[0] : value;
  if (typeof text !== 'string' || text.trim() === '') return fallbackMs;
  const seconds = Number(text);
  if (Number.isFinite(seconds)) return Math.max(0, Math.min(seconds, 3600)) * 1000;
  const date = Date.parse(text);
  if (Number.isFinite(date)) return Math.max(0, Math.min(date - now, 3_600_000));
  return fallbackMs;
}
