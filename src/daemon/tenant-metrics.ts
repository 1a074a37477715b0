/*
 * Per-tenant figures on /metrics: requests (by the caller's tenant) and quota refusals. Tokens per tenant are
 * the accounting's cs_llm_tokens_total{upstream,tenant,type}. Labels are tenants of API keys or of the config
 * (the implicit default one without keys), never a value a client sends, so the label set stays bounded.
 * Counted in plain maps on the request path and read when scraped.
 */

import { Counter, Gauge, type Registry } from '../metrics/prom-client.js';
import type { RequestObservers } from './observers.js';
import type { TenantQuotas } from './quotas.js';

/** Health checks and scrapes are not a tenant's traffic. */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

export function registerTenantMetrics(registry: Registry, observers: RequestObservers, quotas: TenantQuotas): void {
  const requests = new Map<string, number>();
  observers.add((record) => {
    const tenant = record.callerTenant;
    if (tenant !== undefined && !PROBES.has(record.route)) requests.set(tenant, (requests.get(tenant) ?? 0) + 1);
  });
  const registers = [registry];
  new Counter({
    name: 'cs_llm_tenant_requests_total',
    help: "API requests by the tenant of the caller's key (refused ones included, once the key was checked; not health checks or scrapes).",
    labelNames: ['tenant'],
    registers,
    collect() {
      this.reset();
      for (const [tenant, n] of requests) this.inc({ tenant }, n);
    },
  });
  new Counter({
    name: 'cs_llm_tenant_quota_exceeded_total',
    help: 'Requests refused with 429 quota_exceeded, by tenant and quota (requests, tokens, sessions).',
    labelNames: ['tenant', 'quota'],
    registers,
    collect() {
      this.reset();
      for (const [tenant, counts] of quotas.refusals())
        for (const [quota, n] of Object.entries(counts)) if (n > 0) this.inc({ tenant, quota }, n);
    },
  });
  new Gauge({
    name: 'cs_llm_tenant_tokens_today',
    help: 'Tokens a tenant with a tokensPerDay quota used today (UTC), as its quota counts them.',
    labelNames: ['tenant'],
    registers,
    collect() {
      this.reset();
      for (const { tenant, used } of quotas.tokenUse(Date.now())) this.set({ tenant }, used);
    },
  });
  new Gauge({
    name: 'cs_llm_tenant_tokens_per_day_limit',
    help: "A tenant's tokensPerDay quota.",
    labelNames: ['tenant'],
    registers,
    collect() {
      this.reset();
      for (const { tenant, limit } of quotas.tokenUse(Date.now())) this.set({ tenant }, limit);
    },
  });
}
