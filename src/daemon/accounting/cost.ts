/*
 * What tokens and time cost, from an upstream's price (docs/cost-and-capacity.md). Pure functions.
 */

import type { PriceConfig } from '../../core/upstream-config.js';

/** The hours a monthly amount is spread over: 365 days x 24 h / 12 months. */
export const HOURS_PER_MONTH = 730;

export interface TokenCounts {
  prompt: number;
  /** Of prompt, served from the provider's cache (billed at cachedInput). */
  cached: number;
  completion: number;
}

function perToken(price: PriceConfig): number {
  return price.per === '1K' ? 1 / 1_000 : 1 / 1_000_000;
}

/** The price of these tokens in the price's currency (0 without token prices). */
export function tokenCost(price: PriceConfig | undefined, t: TokenCounts): number {
  if (!price || price.input === undefined || price.output === undefined) return 0;
  const cached = Math.min(t.cached, t.prompt);
  const cachedPrice = price.cachedInput ?? price.input;
  return ((t.prompt - cached) * price.input + cached * cachedPrice + t.completion * price.output) * perToken(price);
}

/**
 * The time-based cost of `ms` milliseconds: the monthly amount's share, plus the energy `watts` (the mean
 * power of the upstream's GPUs over that time; null when unknown) at electricityPerKWh.
 */
export function timeCost(price: PriceConfig | undefined, ms: number, watts: number | null): number {
  if (!price) return 0;
  let cost = 0;
  if (price.monthly !== undefined) cost += (price.monthly * ms) / (HOURS_PER_MONTH * 3_600_000);
  if (price.electricityPerKWh !== undefined && watts !== null) cost += ((watts / 1000) * ms * price.electricityPerKWh) / 3_600_000;
  return cost;
}

/** Whether an upstream has a cost that runs with time (counted by the clock, not per request). */
export function hasTimeCost(price: PriceConfig | undefined): boolean {
  return price !== undefined && (price.monthly !== undefined || price.electricityPerKWh !== undefined);
}

/**
 * What one more request of this size costs on the upstream (cheapest routing): its tokens at the token prices.
 * Time-based costs are paid whether or not the request goes there, so they add nothing; no price: 0.
 */
export function marginalCost(price: PriceConfig | undefined, prompt: number, completion: number): number {
  return tokenCost(price, { prompt, cached: 0, completion });
}
