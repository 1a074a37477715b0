/*
 * The capacity test's arithmetic (`cs-llm bench`, docs/cost-and-capacity.md): a step's figures from its turns,
 * whether it held the SLO, the next arrival rate to try, and the knee. Pure.
 */

import { percentile } from '../metrics/quantile.js';

/** One chat turn as the load generator saw it. Times in ms, from when the turn was due. */
export interface TurnOutcome {
  result: 'ok' | 'error' | 'rate_limited';
  /** Due time to the reply's end. */
  e2eMs: number;
  /** Due time to the first content token (streams only). */
  ttftMs: number | null;
  completionTokens: number;
  /** For errors: the status or what went wrong. */
  problem?: string;
}

export interface Quantiles {
  p50: number;
  p95: number;
  p99: number;
}

export interface StepRow {
  /** Offered arrival rate, chat turns per second. */
  rate: number;
  seconds: number;
  /** Turns due in the step. */
  sent: number;
  completed: number;
  completedPerSecond: number;
  tokensPerSecond: number;
  /** Seconds; null when nothing completed (or no stream). */
  ttft: Quantiles | null;
  e2e: Quantiles | null;
  errors: number;
  rateLimited: number;
  /** p95 within the SLO and errors + 429s within the allowed share. */
  ok: boolean;
  /** Why not, in words. */
  why: string | null;
  /** Cut short by Ctrl-C. */
  partial: boolean;
  /** The commonest problem of the failed turns, e.g. "HTTP 502". */
  problem: string | null;
}

export interface StepLimits {
  sloP95Ms: number;
  /** Largest share of turns that may fail (errors and 429s) for the step to count as held. */
  maxErrorShare: number;
}

function quantiles(values: number[]): Quantiles | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50) / 1000, p95: percentile(sorted, 95) / 1000, p99: percentile(sorted, 99) / 1000 };
}

function commonest(values: string[]): string | null {
  const counts = new Map<string, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: string | null = null;
  for (const [v, n] of counts) if (best === null || n > counts.get(best)!) best = v;
  return best;
}

export function summarizeStep(
  outcomes: readonly TurnOutcome[],
  rate: number,
  seconds: number,
  limits: StepLimits,
  partial = false,
): StepRow {
  const done = outcomes.filter((o) => o.result === 'ok');
  const errors = outcomes.filter((o) => o.result === 'error').length;
  const rateLimited = outcomes.filter((o) => o.result === 'rate_limited').length;
  const e2e = quantiles(done.map((o) => o.e2eMs));
  const ttft = quantiles(done.flatMap((o) => (o.ttftMs === null ? [] : [o.ttftMs])));
  const failedShare = outcomes.length > 0 ? (errors + rateLimited) / outcomes.length : 0;
  let why: string | null = null;
  if (done.length === 0) why = outcomes.length === 0 ? 'no turn was due' : 'no turn completed';
  else if (e2e!.p95 * 1000 > limits.sloP95Ms) why = `p95 ${e2e!.p95.toFixed(2)} s is over the SLO`;
  else if (failedShare > limits.maxErrorShare) why = `${(failedShare * 100).toFixed(1)}% of turns failed`;
  return {
    rate,
    seconds,
    sent: outcomes.length,
    completed: done.length,
    completedPerSecond: seconds > 0 ? done.length / seconds : 0,
    tokensPerSecond: seconds > 0 ? done.reduce((n, o) => n + o.completionTokens, 0) / seconds : 0,
    ttft,
    e2e,
    errors,
    rateLimited,
    ok: why === null,
    why,
    partial,
    problem: commonest(outcomes.flatMap((o) => (o.problem ? [o.problem] : []))),
  };
}

export interface RampOptions {
  start: number;
  /** Each step offers this many times the last, until one breaks the SLO. */
  factor: number;
  maxRate: number;
  maxSteps: number;
  /** Steps between the last rate that held and the first that broke, halving the gap (geometrically). */
  refine: number;
}

/** Three significant digits: rates people read. */
export function roundRate(rate: number): number {
  return Number(rate.toPrecision(3));
}

/** The next rate to offer, or null when the test is over. */
export function nextRate(rows: readonly StepRow[], o: RampOptions): number | null {
  if (rows.length === 0) return roundRate(Math.min(o.start, o.maxRate));
  if (rows.length >= o.maxSteps) return null;
  const firstBad = rows.findIndex((r) => !r.ok);
  if (firstBad < 0) {
    const last = rows[rows.length - 1]!.rate;
    if (last >= o.maxRate) return null;
    return roundRate(Math.min(o.maxRate, last * o.factor));
  }
  const held = rows.filter((r) => r.ok).map((r) => r.rate);
  if (held.length === 0 || rows.length - 1 - firstBad >= o.refine) return null;
  const low = Math.max(...held);
  const high = Math.min(...rows.filter((r) => !r.ok && r.rate > low).map((r) => r.rate));
  if (!Number.isFinite(high)) return null;
  const mid = roundRate(Math.sqrt(low * high));
  // Too close to tell apart: done.
  return mid > low && mid < high && high / low > 1.04 ? mid : null;
}

/** The highest offered rate that held the SLO, and its row. */
export function kneeOf(rows: readonly StepRow[]): StepRow | null {
  let best: StepRow | null = null;
  for (const r of rows) if (r.ok && !r.partial && (best === null || r.rate > best.rate)) best = r;
  return best;
}
