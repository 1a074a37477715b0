/*
 * Quotas per tenant (config `tenants`): API requests per minute, tokens per UTC day, live sessions. Over one:
 * 429 quota_exceeded with Retry-After (the openai client raises RateLimitError). The state is in this
 * process's memory: the request buckets start full, today's tokens start from the store's usage aggregates
 * (seedTokens), and the session count is read from the store when a turn would start a session. Several
 * daemons on one database (PostgreSQL, issue 20) would each count their own.
 */

import type { TenantQuotaConfig } from '../core/config.js';
import type { Store } from '../store/store.js';
import { ApiError } from './api-error.js';

export type QuotaName = 'requests' | 'tokens' | 'sessions';

interface Bucket {
  tokens: number;
  at: number;
}

const DAY_MS = 86_400_000;

/** The UTC day of `ms` as a number (days since the epoch). */
const dayOf = (ms: number) => Math.floor(ms / DAY_MS);

export class TenantQuotas {
  private readonly buckets = new Map<string, Bucket>();
  private readonly used = new Map<string, { day: number; tokens: number }>();
  private readonly refused = new Map<string, Record<QuotaName, number>>();
  /** Some tenant has a request quota / a token quota (otherwise those checks are skipped). */
  readonly limitsRequests: boolean;
  readonly limitsTokens: boolean;

  constructor(private readonly tenants: Readonly<Record<string, TenantQuotaConfig>>) {
    const all = Object.values(tenants);
    this.limitsRequests = all.some((q) => q.requestsPerMinute > 0);
    this.limitsTokens = all.some((q) => q.tokensPerDay > 0);
  }

  private quotaOf(tenant: string): TenantQuotaConfig | undefined {
    return Object.hasOwn(this.tenants, tenant) ? this.tenants[tenant] : undefined;
  }

  /** Takes one request from the tenant's bucket (requestsPerMinute, refilled evenly); throws the 429 when empty. */
  admitRequest(tenant: string, nowMs: number): void {
    const rpm = this.quotaOf(tenant)?.requestsPerMinute ?? 0;
    if (rpm <= 0) return;
    const perMs = rpm / 60_000;
    const bucket = this.buckets.get(tenant) ?? { tokens: rpm, at: nowMs };
    bucket.tokens = Math.min(rpm, bucket.tokens + Math.max(0, nowMs - bucket.at) * perMs);
    bucket.at = nowMs;
    this.buckets.set(tenant, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return;
    }
    const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / perMs / 1000));
    throw this.refuse(tenant, 'requests', retryAfter, `its quota of ${rpm} requests per minute`);
  }

  /** Tokens the tenant used today (UTC), as counted here. */
  tokensToday(tenant: string, nowMs: number): number {
    const entry = this.used.get(tenant);
    return entry && entry.day === dayOf(nowMs) ? entry.tokens : 0;
  }

  /** Throws the 429 when the tenant's tokens today reached tokensPerDay (the request that crosses it finishes). */
  admitTokens(tenant: string, nowMs: number): void {
    const limit = this.quotaOf(tenant)?.tokensPerDay ?? 0;
    if (limit <= 0 || this.tokensToday(tenant, nowMs) < limit) return;
    const retryAfter = Math.max(1, Math.ceil(((dayOf(nowMs) + 1) * DAY_MS - nowMs) / 1000));
    throw this.refuse(tenant, 'tokens', retryAfter, `its quota of ${limit} tokens per day (UTC; it starts again at midnight)`);
  }

  /** Counts an engine reply's tokens (prompt and completion) for the tenant's day. */
  addTokens(tenant: string, tokens: number, nowMs: number): void {
    if (tokens <= 0 || !this.limitsTokens) return;
    const day = dayOf(nowMs);
    const entry = this.used.get(tenant);
    if (entry && entry.day === day) entry.tokens += tokens;
    else this.used.set(tenant, { day, tokens });
  }

  /** At start: the tokens the store's aggregates already hold for today, per tenant. */
  seedTokens(perTenant: ReadonlyMap<string, number>, nowMs: number): void {
    for (const [tenant, tokens] of perTenant) this.addTokens(tenant, tokens, nowMs);
  }

  /** The tenant's maxSessions, 0 for none. */
  maxSessions(tenant: string): number {
    return this.quotaOf(tenant)?.maxSessions ?? 0;
  }

  /** The 429 for a turn that would start a session beyond maxSessions; Retry-After: when the first one expires. */
  refuseSession(tenant: string, nextExpiry: number | null, nowMs: number): ApiError {
    const retryAfter = Math.max(1, Math.ceil(((nextExpiry ?? nowMs + 1000) - nowMs) / 1000));
    return this.refuse(
      tenant,
      'sessions',
      retryAfter,
      `its quota of ${this.maxSessions(tenant)} live sessions (a session ends when it expires or is deleted)`,
    );
  }

  /** Requests refused per tenant and quota, for /metrics. */
  refusals(): ReadonlyMap<string, Readonly<Record<QuotaName, number>>> {
    return this.refused;
  }

  /** Tenants with a token quota and their count today, for /metrics. */
  tokenUse(nowMs: number): Array<{ tenant: string; used: number; limit: number }> {
    return Object.entries(this.tenants)
      .filter(([, q]) => q.tokensPerDay > 0)
      .map(([tenant, q]) => ({ tenant, used: this.tokensToday(tenant, nowMs), limit: q.tokensPerDay }));
  }

  private refuse(tenant: string, quota: QuotaName, retryAfter: number, what: string): ApiError {
    let counts = this.refused.get(tenant);
    if (!counts) this.refused.set(tenant, (counts = { requests: 0, tokens: 0, sessions: 0 }));
    counts[quota]++;
    return new ApiError(429, `tenant ${tenant} reached ${what}; retry in ${retryAfter} s`, {
      code: 'quota_exceeded',
      headers: { 'retry-after': String(retryAfter) },
    });
  }
}

/**
 * Today's tokens per tenant from the store's usage aggregates (usage_daily, one row per day and combination,
 * read by its primary key's day prefix): what the quota counts from at start. The aggregates lag the requests
 * by up to store.usageFlushMs, so a daemon that crashed forgets at most that long of a day's tokens.
 */
export async function tokensTodayByTenant(store: Pick<Store, 'usage'>, nowMs: number): Promise<Map<string, number>> {
  const day = new Date(nowMs).toISOString().slice(0, 10);
  const sums = new Map<string, number>();
  for (const row of await store.usage.query({ fromDay: day, toDay: day }))
    sums.set(row.tenant, (sums.get(row.tenant) ?? 0) + row.promptTokens + row.completionTokens);
  return sums;
}
