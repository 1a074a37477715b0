/*
 * Per-key request rate limits (token buckets), so one application sharing the box cannot take all of it.
 * Admission control bounds what runs at once for everyone; this bounds how often each key may ask. A key's
 * bucket holds `burst` requests and refills at requestsPerMinute / 60 per second. Requests without a key
 * (loopback while no key exists) share one bucket.
 */

import { ApiError } from './api-error.js';

export interface RateLimit {
  /** 0: no limit. */
  requestsPerMinute: number;
  /** Requests that may come at once after a quiet spell (default: a minute's worth). */
  burst?: number;
}

export interface RateLimitConfig extends RateLimit {
  /** Per key, by its public prefix as `cs-llm keys list` shows it (e.g. "csk_1a2b3c4d"). */
  keys: Record<string, RateLimit>;
}

interface Bucket {
  tokens: number;
  at: number;
}

export const ANONYMOUS = '(no key)';

export class KeyRateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly config: RateLimitConfig) {}

  /** true when some limit is configured (otherwise the daemon skips the check). */
  get active(): boolean {
    return this.config.requestsPerMinute > 0 || Object.values(this.config.keys).some((l) => l.requestsPerMinute > 0);
  }

  private limitFor(keyId: string): RateLimit {
    return (Object.hasOwn(this.config.keys, keyId) ? this.config.keys[keyId] : undefined) ?? this.config;
  }

  /** Takes one request from the key's bucket: null when allowed, else the seconds until one is. Pure but for the map. */
  take(keyId: string | undefined, nowMs: number): number | null {
    const id = keyId ?? ANONYMOUS;
    const limit = this.limitFor(id);
    if (limit.requestsPerMinute <= 0) return null;
    const capacity = Math.max(1, limit.burst ?? limit.requestsPerMinute);
    const perMs = limit.requestsPerMinute / 60_000;
    const bucket = this.buckets.get(id) ?? { tokens: capacity, at: nowMs };
    bucket.tokens = Math.min(capacity, bucket.tokens + Math.max(0, nowMs - bucket.at) * perMs);
    bucket.at = nowMs;
    this.buckets.set(id, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return null;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
  }

  /** Throws the 429 for a refused request. */
  check(keyId: string | undefined, nowMs: number): void {
    const retryAfter = this.take(keyId, nowMs);
    if (retryAfter === null) return;
    const limit = this.limitFor(keyId ?? ANONYMOUS);
    throw new ApiError(
      429,
      `rate limit of ${limit.requestsPerMinute} requests per minute reached for ${keyId ? `key ${keyId}` : 'requests without a key'}; retry in ${retryAfter} s`,
      {
        code: 'rate_limit_exceeded',
        headers: { 'retry-after': String(retryAfter) },
      },
    );
  }
}
