import { Counter, Gauge, Histogram, type Registry } from '../../metrics/prom-client.js';
import { TallyCounter } from '../../metrics/tally.js';
import type { ShadowComparison } from '../shadow.js';
import type { RoutingEvents } from './failover.js';
import type { UpstreamSet } from './upstream-set.js';

/**
 * Per-attempt routing figures and shadow comparisons, registered on the daemon's /metrics registry. These
 * count attempts (a failed-over request is several); cs_llm_upstream_requests_total counts requests.
 */
export interface RoutingMetrics {
  events: RoutingEvents;
  shadow: (result: ShadowComparison | { upstream: string; failed: string }) => void;
}

export function createRoutingMetrics(registry: Registry, set?: UpstreamSet): RoutingMetrics {
  const registers = [registry];
  const budgeted = set?.members.filter((m) => m.budget !== null) ?? [];
  if (budgeted.length > 0) {
    new Gauge({
      name: 'cs_llm_upstream_budget_used_ratio',
      help: "Share of an upstream's rate limit (upstreams[].limits) used in the current window, by limit (rpm, tpm).",
      labelNames: ['upstream', 'limit'],
      registers,
      collect() {
        const now = set!.now();
        for (const m of budgeted) {
          const used = m.budget!.used(now);
          const { rpm, tpm } = m.budget!.limits;
          if (rpm !== undefined) this.set({ upstream: m.name, limit: 'rpm' }, used.requests / rpm);
          if (tpm !== undefined) this.set({ upstream: m.name, limit: 'tpm' }, used.tokens / tpm);
        }
      },
    });
  }
  // Counted for every request: a tally (src/metrics/tally.ts), its series kept per upstream.
  const attempts = new TallyCounter({
    name: 'cs_llm_upstream_attempts_total',
    help: 'Attempts sent to each upstream, retries included.',
    registry,
    labelled: true,
  });
  const attemptFailures = new Counter({
    name: 'cs_llm_upstream_attempt_failures_total',
    help: 'Failed attempts by upstream and reason (timeout, unavailable, overloaded = 429/503, status_NNN, stream_error).',
    labelNames: ['upstream', 'reason'],
    registers,
  });
  const retries = new Counter({
    name: 'cs_llm_upstream_retries_total',
    help: 'Failovers: attempts after the first, by the upstream retried on.',
    labelNames: ['upstream'],
    registers,
  });
  const ejections = new Counter({
    name: 'cs_llm_upstream_ejections_total',
    help: 'Times an upstream was taken out after consecutive failures.',
    labelNames: ['upstream'],
    registers,
  });
  const shadowRequests = new Counter({
    name: 'cs_llm_shadow_requests_total',
    help: 'Mirrored requests by shadow upstream and result: exact (same text), differed, failed.',
    labelNames: ['upstream', 'result'],
    registers,
  });
  const shadowSimilarity = new Histogram({
    name: 'cs_llm_shadow_similarity_ratio',
    help: 'Word overlap (Jaccard) of the shadow answer with the real one, 0 to 1.',
    labelNames: ['upstream'],
    buckets: [0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1],
    registers,
  });
  const shadowDuration = new Histogram({
    name: 'cs_llm_shadow_duration_seconds',
    help: 'Upstream time of mirrored requests: which="primary" (the real reply) or "shadow".',
    labelNames: ['upstream', 'which'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers,
  });
  // Label objects reused per upstream: attempts are counted on the hot path.
  const labels = new Map<string, { upstream: string }>();
  const label = (upstream: string) => {
    let l = labels.get(upstream);
    if (!l) labels.set(upstream, (l = { upstream }));
    return l;
  };
  return {
    events: {
      attempt: (upstream) => attempts.series(upstream, () => ({ upstream })).inc(),
      failure: (upstream, reason) => attemptFailures.inc({ upstream, reason }),
      retry: (upstream) => retries.inc(label(upstream)),
      ejected: (upstream) => ejections.inc(label(upstream)),
    },
    shadow: (result) => {
      if ('failed' in result) {
        shadowRequests.inc({ upstream: result.upstream, result: 'failed' });
        return;
      }
      shadowRequests.inc({ upstream: result.upstream, result: result.exact ? 'exact' : 'differed' });
      shadowSimilarity.observe({ upstream: result.upstream }, result.similarity);
      shadowDuration.observe({ upstream: result.upstream, which: 'primary' }, result.primaryMs / 1000);
      shadowDuration.observe({ upstream: result.upstream, which: 'shadow' }, result.shadowMs / 1000);
    },
  };
}
