/*
 * What the dashboard shows, built from successive scrapes of the daemon's /metrics. Pure: each scrape (or
 * failed scrape) and the previous state give the next state; rates and latency quantiles are computed over
 * the window between two scrapes from the counters' and histograms' differences.
 */

import { bucketsOf, select, sumOf, type Buckets, type ParsedMetrics } from '../metrics/prom-text.js';
import { bucketDelta, histogramQuantile } from '../metrics/quantile.js';
import { tenantCounters, tenantViews, type TenantCounters, type TenantView } from './tenants.js';

export interface GpuView {
  index: number;
  name: string;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  utilization: number | null;
  temperatureC: number | null;
  powerW: number | null;
}

/** Money spent since the daemon started, per currency (cs_llm_cost_total, cs_llm_sessions_started_total). */
export interface CostView {
  currency: string;
  perHour: number | null;
  per1kSessions: number | null;
}

export interface Quantiles {
  p50: number | null;
  p95: number | null;
  p99: number | null;
}

export interface DashboardEvent {
  id: number;
  /** ms since the epoch */
  at: number;
  level: 'info' | 'warn' | 'error';
  text: string;
}

/** Counter and histogram readings kept from the last scrape, to difference against. */
export interface Snapshot {
  at: number;
  requests: number;
  errors: number;
  rateLimited: number;
  completionTokens: number;
  duration: Buckets | null;
  ttft: Buckets | null;
  startTime: number | null;
  engineStartTime: number | null;
  /** Upstream ejections by upstream, and calls refused by an open tool breaker by tool. */
  ejections: Map<string, number>;
  breakerRefusals: Map<string, number>;
  tenants: TenantCounters;
}

export interface EngineView {
  upstream: string;
  up: boolean;
  running: number | null;
  waiting: number | null;
  kvCache: number | null;
}

export interface DashboardState {
  url: string;
  intervalMs: number;
  /** null before the first scrape answered or failed. */
  reachable: boolean | null;
  unreachableSince: number | null;
  /** Why the last scrape failed (no secrets: never the key). */
  problem: string | null;
  lastScrapeAt: number | null;
  version: string | null;
  model: string | null;
  upstream: string | null;
  engineUp: boolean | null;
  uptimeSeconds: number | null;
  requestsPerSecond: number | null;
  /** Requests per second per scrape, oldest first, at most a minute of them. */
  rpsHistory: number[];
  latency: Quantiles;
  ttft: Quantiles;
  tokensPerSecond: number | null;
  inFlight: number | null;
  queued: number | null;
  /** Share of requests in the window answered 5xx, and 429. */
  errorRate: number | null;
  rateLimitedRate: number | null;
  sessionsActive: number | null;
  kvCacheUsage: number | null;
  engineRunning: number | null;
  engineWaiting: number | null;
  /** Every engine the daemon routes to, by its URL (several with replicas). */
  engines: EngineView[];
  gpus: GpuView[];
  cost: CostView[];
  /** Per tenant (the tenants of API keys; `default` without keys), busiest first. */
  tenants: TenantView[];
  events: DashboardEvent[];
  previous: Snapshot | null;
}

const CHAT_ROUTE = '/v1/chat/completions';
const MAX_EVENTS = 200;
const NO_QUANTILES: Quantiles = { p50: null, p95: null, p99: null };

export function initialState(url: string, intervalMs: number): DashboardState {
  return {
    url,
    intervalMs,
    reachable: null,
    unreachableSince: null,
    problem: null,
    lastScrapeAt: null,
    version: null,
    model: null,
    upstream: null,
    engineUp: null,
    uptimeSeconds: null,
    requestsPerSecond: null,
    rpsHistory: [],
    latency: NO_QUANTILES,
    ttft: NO_QUANTILES,
    tokensPerSecond: null,
    inFlight: null,
    queued: null,
    errorRate: null,
    rateLimitedRate: null,
    sessionsActive: null,
    kvCacheUsage: null,
    engineRunning: null,
    engineWaiting: null,
    engines: [],
    gpus: [],
    cost: [],
    tenants: [],
    events: [],
    previous: null,
  };
}

function addEvent(state: DashboardState, at: number, level: DashboardEvent['level'], text: string): DashboardEvent[] {
  const id = (state.events[state.events.length - 1]?.id ?? 0) + 1;
  const events = [...state.events, { id, at, level, text }];
  return events.length > MAX_EVENTS ? events.slice(events.length - MAX_EVENTS) : events;
}

function quantiles(now: Buckets | null, before: Buckets | null | undefined): Quantiles {
  if (!now) return NO_QUANTILES;
  const window = bucketDelta(now, before ?? null);
  return { p50: histogramQuantile(0.5, window), p95: histogramQuantile(0.95, window), p99: histogramQuantile(0.99, window) };
}

function snapshotOf(m: ParsedMetrics, at: number): Snapshot {
  const statuses = select(m, 'cs_llm_http_requests_total', { route: CHAT_ROUTE });
  let requests = 0;
  let errors = 0;
  let rateLimited = 0;
  for (const s of statuses) {
    requests += s.value;
    const status = Number(s.labels.status);
    if (status >= 500) errors += s.value;
    if (status === 429) rateLimited += s.value;
  }
  return {
    at,
    requests,
    errors,
    rateLimited,
    completionTokens: sumOf(m, 'cs_llm_completion_tokens_total') ?? 0,
    // Non-streamed chat requests: a streamed one lasts as long as its reply, which is not latency.
    duration: bucketsOf(m, 'cs_llm_http_request_duration_seconds', { route: CHAT_ROUTE, stream: 'false' }),
    ttft: bucketsOf(m, 'cs_llm_time_to_first_token_seconds'),
    startTime: sumOf(m, 'cs_llm_start_time_seconds'),
    engineStartTime: sumOf(m, 'cs_llm_engine_start_time_seconds'),
    ejections: byLabel(m, 'cs_llm_upstream_ejections_total', 'upstream'),
    breakerRefusals: byLabel(m, 'cs_llm_tool_calls_total', 'tool', { outcome: 'breaker_open' }),
    tenants: tenantCounters(m),
  };
}

function byLabel(m: ParsedMetrics, name: string, label: string, labels?: Record<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of select(m, name, labels)) {
    const key = s.labels[label] ?? '';
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** Keys whose count grew since the previous scrape, with how much. */
function grown(now: Map<string, number>, before: Map<string, number>): Array<[string, number]> {
  const out: Array<[string, number]> = [];
  for (const [key, value] of now) {
    const delta = value - (before.get(key) ?? 0);
    if (delta > 0) out.push([key, delta]);
  }
  return out;
}

function gpusOf(m: ParsedMetrics): GpuView[] {
  const byIndex = new Map<number, GpuView>();
  const view = (labels: Record<string, string>): GpuView => {
    const index = Number(labels.gpu);
    let gpu = byIndex.get(index);
    if (!gpu) {
      gpu = {
        index,
        name: labels.name ?? `GPU ${index}`,
        memoryUsedBytes: null,
        memoryTotalBytes: null,
        utilization: null,
        temperatureC: null,
        powerW: null,
      };
      byIndex.set(index, gpu);
    }
    return gpu;
  };
  const fields: Array<[string, keyof GpuView]> = [
    ['cs_llm_gpu_memory_used_bytes', 'memoryUsedBytes'],
    ['cs_llm_gpu_memory_total_bytes', 'memoryTotalBytes'],
    ['cs_llm_gpu_utilization_ratio', 'utilization'],
    ['cs_llm_gpu_temperature_celsius', 'temperatureC'],
    ['cs_llm_gpu_power_watts', 'powerW'],
  ];
  for (const [name, field] of fields) {
    for (const s of select(m, name)) (view(s.labels) as unknown as Record<string, number>)[field] = s.value;
  }
  return [...byIndex.values()].sort((a, b) => a.index - b.index);
}

/** From counters since the daemon started: steadier than between two scrapes, as power is counted every flush. */
function costOf(m: ParsedMetrics, uptimeSeconds: number | null): CostView[] {
  const sessions = sumOf(m, 'cs_llm_sessions_started_total') ?? 0;
  return [...byLabel(m, 'cs_llm_cost_total', 'currency')].map(([currency, cost]) => ({
    currency,
    perHour: uptimeSeconds !== null && uptimeSeconds >= 60 ? cost / (uptimeSeconds / 3600) : null,
    per1kSessions: sessions > 0 ? (cost / sessions) * 1000 : null,
  }));
}

function ratio(part: number, whole: number): number | null {
  return whole > 0 ? part / whole : null;
}

/** The next state after a scrape that answered. */
export function applyScrape(state: DashboardState, m: ParsedMetrics, at: number): DashboardState {
  const snap = snapshotOf(m, at);
  let prev = state.previous;
  let events = state.events;
  if (state.reachable === false) {
    const since = state.unreachableSince ?? at;
    events = addEvent({ ...state, events }, at, 'info', `daemon back after ${formatDuration((at - since) / 1000)}`);
  } else if (state.reachable === null) {
    events = addEvent({ ...state, events }, at, 'info', `connected to ${state.url}`);
  }
  if (prev && snap.startTime !== null && prev.startTime !== null && snap.startTime !== prev.startTime) {
    events = addEvent({ ...state, events }, at, 'warn', 'the daemon restarted (its counters start again)');
    prev = null;
  }
  const engineUpNow = sumOf(m, 'cs_llm_engine_up');
  const engineUp = engineUpNow === null ? null : engineUpNow > 0;
  if (state.engineUp === true && engineUp === false) events = addEvent({ ...state, events }, at, 'error', 'engine not answering');
  if (state.engineUp === false && engineUp === true) events = addEvent({ ...state, events }, at, 'info', 'engine answering again');
  if (prev && snap.engineStartTime !== null && prev.engineStartTime !== null && snap.engineStartTime !== prev.engineStartTime) {
    events = addEvent({ ...state, events }, at, 'warn', 'the engine restarted');
  }

  if (prev) {
    for (const [upstream] of grown(snap.ejections, prev.ejections)) {
      events = addEvent({ ...state, events }, at, 'warn', `upstream ${upstream} ejected after consecutive failures`);
    }
    for (const [tool, n] of grown(snap.breakerRefusals, prev.breakerRefusals)) {
      events = addEvent({ ...state, events }, at, 'warn', `tool ${tool}: breaker open, ${n} call${n === 1 ? '' : 's'} refused`);
    }
  }

  const seconds = prev ? (at - prev.at) / 1000 : 0;
  const delta = (now: number, before: number | undefined) => Math.max(0, now - (before ?? 0));
  const requestsInWindow = prev ? delta(snap.requests, prev.requests) : 0;
  const rps = prev && seconds > 0 ? requestsInWindow / seconds : null;
  const historyLength = Math.max(1, Math.round(60_000 / state.intervalMs));
  const rpsHistory = rps === null ? state.rpsHistory : [...state.rpsHistory, rps].slice(-historyLength);
  const info = select(m, 'cs_llm_info')[0]?.labels;
  const uptimeSeconds = snap.startTime === null ? null : Math.max(0, at / 1000 - snap.startTime);

  return {
    ...state,
    reachable: true,
    unreachableSince: null,
    problem: null,
    lastScrapeAt: at,
    version: info?.version ?? null,
    model: info?.model || null,
    upstream: info?.upstream ?? null,
    engineUp,
    uptimeSeconds,
    requestsPerSecond: rps,
    rpsHistory,
    latency: prev ? quantiles(snap.duration, prev.duration) : NO_QUANTILES,
    ttft: prev ? quantiles(snap.ttft, prev.ttft) : NO_QUANTILES,
    tokensPerSecond: prev && seconds > 0 ? delta(snap.completionTokens, prev.completionTokens) / seconds : null,
    inFlight: sumOf(m, 'cs_llm_requests_in_flight'),
    queued: sumOf(m, 'cs_llm_requests_queued'),
    errorRate: prev ? ratio(delta(snap.errors, prev.errors), requestsInWindow) : null,
    rateLimitedRate: prev ? ratio(delta(snap.rateLimited, prev.rateLimited), requestsInWindow) : null,
    sessionsActive: sumOf(m, 'cs_llm_sessions_active'),
    kvCacheUsage: sumOf(m, 'cs_llm_engine_kv_cache_usage_ratio'),
    engineRunning: sumOf(m, 'cs_llm_engine_requests_running'),
    engineWaiting: sumOf(m, 'cs_llm_engine_requests_waiting'),
    engines: enginesOf(m),
    gpus: gpusOf(m),
    cost: costOf(m, uptimeSeconds),
    tenants: tenantViews(m, snap.tenants, prev?.tenants ?? null, seconds),
    events,
    previous: snap,
  };
}

/** The next state after a scrape that failed: the last figures stay, marked as old by `reachable`. */
export function applyFailure(state: DashboardState, problem: string, at: number): DashboardState {
  let events = state.events;
  if (state.reachable !== false || state.problem !== problem) {
    events = addEvent(state, at, 'error', state.reachable === false ? problem : `daemon unreachable: ${problem}`);
  }
  return {
    ...state,
    reachable: false,
    unreachableSince: state.reachable === false ? (state.unreachableSince ?? at) : at,
    problem,
    events,
  };
}

export function formatDuration(seconds: number): string {
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`;
}

/** The daemon's per-engine gauges, one view per upstream label. */
function enginesOf(m: ParsedMetrics): EngineView[] {
  const up = byLabel(m, 'cs_llm_engine_up', 'upstream');
  const running = byLabel(m, 'cs_llm_engine_requests_running', 'upstream');
  const waiting = byLabel(m, 'cs_llm_engine_requests_waiting', 'upstream');
  const kv = byLabel(m, 'cs_llm_engine_kv_cache_usage_ratio', 'upstream');
  return [...up.keys()].map((upstream) => ({
    upstream,
    up: (up.get(upstream) ?? 0) > 0,
    running: running.get(upstream) ?? null,
    waiting: waiting.get(upstream) ?? null,
    kvCache: kv.get(upstream) ?? null,
  }));
}
