/*
 * Quantiles from cumulative histogram buckets, the way Prometheus' histogram_quantile() computes them:
 * find the bucket holding rank q x count and interpolate linearly inside it (the first bucket from 0).
 * Pure functions, so the dashboard's figures are tested on numbers.
 */

import type { Buckets } from './prom-text.js';

/** Buckets observed between two scrapes: now minus before, per bound (a counter reset counts from zero). */
export function bucketDelta(now: Buckets, before: Buckets | null): Buckets {
  if (!before) return now;
  const prior = new Map<number, number>();
  before.bounds.forEach((b, i) => prior.set(b, before.counts[i]!));
  const counts = now.bounds.map((b, i) => now.counts[i]! - (prior.get(b) ?? 0));
  // A restarted process starts its counters again: a negative delta means "everything now is new".
  if (counts.some((c) => c < 0)) return now;
  return { bounds: now.bounds, counts };
}

/**
 * The q-quantile (0..1) of the observations in the buckets, or null when there are none. A rank that falls
 * in the +Inf bucket answers the highest finite bound, as Prometheus does.
 */
export function histogramQuantile(q: number, buckets: Buckets): number | null {
  const { bounds, counts } = buckets;
  if (bounds.length === 0) return null;
  const total = counts[counts.length - 1]!;
  if (!(total > 0)) return null;
  const rank = Math.min(Math.max(q, 0), 1) * total;
  for (let i = 0; i < bounds.length; i++) {
    if (counts[i]! < rank) continue;
    const upper = bounds[i]!;
    if (upper === Number.POSITIVE_INFINITY) {
      const finite = bounds.filter((b) => Number.isFinite(b));
      return finite.length > 0 ? finite[finite.length - 1]! : null;
    }
    const lower = i === 0 ? 0 : bounds[i - 1]!;
    const below = i === 0 ? 0 : counts[i - 1]!;
    const inBucket = counts[i]! - below;
    if (inBucket <= 0) return upper;
    return lower + (upper - lower) * ((rank - below) / inBucket);
  }
  return null;
}

/**
 * The p-th percentile (0..100) of samples sorted ascending, by nearest rank: the smallest sample with at
 * least p% of the samples at or below it (so p50 of [1, 2, 3, 4] is 2, and every answer is a real sample).
 * NaN without samples. The one sample percentile of cs-llm: the benchmarks use it.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}
