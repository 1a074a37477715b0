/*
 * The dashboard's per-tenant lines, from the daemon's per-tenant counters: requests, tokens (of the engine's
 * replies) and 429 quota_exceeded refusals per second over the window between two scrapes, and a token
 * quota's use today. Pure.
 */

import { select, type ParsedMetrics } from '../metrics/prom-text.js';

export interface TenantView {
  tenant: string;
  requestsPerSecond: number | null;
  tokensPerSecond: number | null;
  /** Requests refused by one of the tenant's quotas in the window (a count, not a rate). */
  refused: number | null;
  /** Tokens today and the tokensPerDay quota, for a tenant that has one. */
  tokensToday: number | null;
  tokensPerDay: number | null;
}

/** The per-tenant counters of one scrape. */
export interface TenantCounters {
  requests: Map<string, number>;
  tokens: Map<string, number>;
  refused: Map<string, number>;
}

function sumBy(m: ParsedMetrics, name: string, keep: (labels: Record<string, string>) => boolean = () => true): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of select(m, name)) {
    const tenant = s.labels.tenant;
    if (tenant === undefined || !keep(s.labels)) continue;
    out.set(tenant, (out.get(tenant) ?? 0) + s.value);
  }
  return out;
}

export function tenantCounters(m: ParsedMetrics): TenantCounters {
  return {
    requests: sumBy(m, 'cs_llm_tenant_requests_total'),
    // Prompt and completion (cached_prompt is part of prompt); shadow and idle-time rows are no tenant's.
    tokens: sumBy(m, 'cs_llm_tokens_total', (l) => l.type !== 'cached_prompt' && !l.tenant!.startsWith('(')),
    refused: sumBy(m, 'cs_llm_tenant_quota_exceeded_total'),
  };
}

/** One view per tenant seen in either scrape, busiest first; null rates on the first scrape. */
export function tenantViews(m: ParsedMetrics, now: TenantCounters, before: TenantCounters | null, seconds: number): TenantView[] {
  const today = sumBy(m, 'cs_llm_tenant_tokens_today');
  const limits = sumBy(m, 'cs_llm_tenant_tokens_per_day_limit');
  const names = new Set([...now.requests.keys(), ...now.tokens.keys(), ...now.refused.keys(), ...limits.keys()]);
  const rate = (counter: keyof TenantCounters, tenant: string): number | null =>
    before && seconds > 0 ? Math.max(0, (now[counter].get(tenant) ?? 0) - (before[counter].get(tenant) ?? 0)) / seconds : null;
  return [...names]
    .map((tenant) => ({
      tenant,
      requestsPerSecond: rate('requests', tenant),
      tokensPerSecond: rate('tokens', tenant),
      refused: before ? Math.max(0, (now.refused.get(tenant) ?? 0) - (before.refused.get(tenant) ?? 0)) : null,
      tokensToday: today.get(tenant) ?? null,
      tokensPerDay: limits.get(tenant) ?? null,
    }))
    .sort((a, b) => (b.requestsPerSecond ?? 0) - (a.requestsPerSecond ?? 0) || a.tenant.localeCompare(b.tenant));
}
