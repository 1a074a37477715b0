/*
 * The daemon's Prometheus metrics (GET /metrics). Per-request figures arrive through the daemon's
 * onRequest hook as one RequestRecord per finished request and cost a few counter/histogram updates; the
 * rest (sessions, GPUs, the engine's own figures) is read when scraped, never per request.
 */

import { Counter, Gauge, Registry } from '../metrics/prom-client.js';
import type { Store } from '../store/store.js';
import type { GpuSample, GpuSamplerOptions } from '../gpu/sampler.js';
import { createGpuMetrics } from '../metrics/gpu-metrics.js';
import { TallyCounter, TallyHistogram, type CounterSeries } from '../metrics/tally.js';
import { parsePrometheusText, sumOf, type ParsedMetrics } from '../metrics/prom-text.js';
import { VERSION } from '../core/version.js';
import type { RequestRecord } from './observers.js';
import { RequestSeries } from './request-series.js';
import type { RequestContext } from './routes.js';
import type { Upstream } from './upstream.js';
import { readAll, type UpstreamInfo } from './upstream-info.js';
import { createRuntimeMetrics } from './runtime-metrics.js';

export interface DaemonMetricsSources {
  store: Pick<Store, 'stats'>;
  upstream: Upstream;
  /** Every engine the daemon routes to (replicas); their /metrics are read each with its own upstream label. Default: upstream alone. */
  engines?: Upstream[];
  /** Where the served model's name is learnt (from the engine's /v1/models). */
  upstreamInfo: Pick<UpstreamInfo, 'known' | 'get'>;
  inFlight: () => number;
  /** Requests waiting inside the daemon (for a session lock, later for admission). */
  queued: () => number;
  /** Clock for session expiry (ms since the epoch). */
  now: () => number;
}

export interface DaemonMetricsOptions {
  /** GPU sampling (nvidia-smi in loop mode); false turns it off. Default: on, nvidia-smi from PATH. */
  gpu?: false | GpuSamplerOptions;
  /** How long the engine's /metrics figures are reused between scrapes (default 1000 ms). */
  engineCacheMs?: number;
  /** Limit for fetching the engine's /metrics at scrape time (default 1000 ms). */
  engineTimeoutMs?: number;
  /** How long session counts are reused (default 5000 ms): counting is a scan of the expiry index. */
  sessionCountCacheMs?: number;
}

export interface DaemonMetrics {
  registry: Registry;
  /** For the tools loop: inc({tool, outcome}). */
  toolCalls: Counter<'tool' | 'outcome'>;
  /** The onRequest listener. */
  observe: (record: RequestRecord) => void;
  /** The GET /metrics route handler. */
  handler: (ctx: RequestContext) => Promise<void>;
  /** The GPUs' latest samples (power for the accounting of electricityPerKWh). */
  gpus(): GpuSample[];
  /** Prometheus text as a scrape would get it. */
  render(selfInFlight?: number): Promise<string>;
  close(): Promise<void>;
}

export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.2, 1.5, 2, 3, 5, 10, 20, 30, 60, 120];
export const TTFT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30];
export const OVERHEAD_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];

/** Why an upstream request failed, from what the record carries (the daemon's error code or the status). */
export function upstreamFailureReason(record: Pick<RequestRecord, 'status' | 'errorCode'>): string {
  switch (record.errorCode) {
    case 'upstream_timeout':
      return 'timeout';
    case 'upstream_unavailable':
      return 'unavailable';
    case 'upstream_bad_reply':
      return 'bad_reply';
    case 'upstream_stream_incomplete':
      return 'stream_incomplete';
    case 'upstream_overloaded':
      return 'overloaded';
    case undefined:
    case null:
      // Headers had gone out (a broken or engine-reported stream error), or the engine's own error status.
      return record.status === 200 ? 'stream_error' : `status_${record.status}`;
    default:
      return record.errorCode;
  }
}

/** Label objects reused per combination, so the hot path allocates none once a combination was seen. */

class LabelCache<T> {
  private readonly map = new Map<string, T>();
  constructor(private readonly make: (key: string) => T) {}
  get(key: string): T {
    let value = this.map.get(key);
    if (value === undefined) {
      value = this.make(key);
      this.map.set(key, value);
    }
    return value;
  }
}

interface EngineFigures {
  up: boolean;
  running: number | null;
  waiting: number | null;
  kvCache: number | null;
  startTime: number | null;
}

/** The figures cs-llm relays from an engine's /metrics (vLLM names; KV-cache under its old or new name). */
export function engineFigures(parsed: ParsedMetrics): Omit<EngineFigures, 'up'> {
  return {
    running: sumOf(parsed, 'vllm:num_requests_running'),
    waiting: sumOf(parsed, 'vllm:num_requests_waiting'),
    kvCache: sumOf(parsed, 'vllm:kv_cache_usage_perc') ?? sumOf(parsed, 'vllm:gpu_cache_usage_perc'),
    startTime: sumOf(parsed, 'process_start_time_seconds'),
  };
}

export function createDaemonMetrics(sources: DaemonMetricsSources, options: DaemonMetricsOptions = {}): DaemonMetrics {
  const registry = new Registry();
  const registers = [registry];
  const upstreamName = sources.upstream.url;

  const info = new Gauge({
    name: 'cs_llm_info',
    help: 'cs-llm daemon version, served model and upstream engine (always 1).',
    labelNames: ['version', 'model', 'upstream'],
    registers,
  });
  const startTime = new Gauge({
    name: 'cs_llm_start_time_seconds',
    help: 'When the daemon started, seconds since the Unix epoch.',
    registers,
  });
  startTime.set(Date.now() / 1000);

  // What every request updates: tallies (src/metrics/tally.ts), not prom-client's own classes.
  const requests = new TallyCounter({
    name: 'cs_llm_http_requests_total',
    help: 'HTTP requests answered, by route, method and status.',
    registry,
    labelled: true,
  });
  const duration = new TallyHistogram({
    name: 'cs_llm_http_request_duration_seconds',
    help: 'Time from request arrival to the end of the response, by route and whether it streamed.',
    buckets: DURATION_BUCKETS,
    registry,
    labelled: true,
  });
  const ttft = new TallyHistogram({
    name: 'cs_llm_time_to_first_token_seconds',
    help: 'Streamed chat completions: time from request arrival to the first byte relayed to the client.',
    buckets: TTFT_BUCKETS,
    registry,
  }).only;
  const overhead = new TallyHistogram({
    name: 'cs_llm_daemon_overhead_seconds',
    help: "The daemon's own time per proxied request: total time minus time waiting on the upstream engine.",
    buckets: OVERHEAD_BUCKETS,
    registry,
  }).only;
  const promptTokens = new TallyCounter({
    name: 'cs_llm_prompt_tokens_total',
    help: 'Prompt tokens of completed chat requests (from the reply usage).',
    registry,
  }).only;
  const completionTokens = new TallyCounter({
    name: 'cs_llm_completion_tokens_total',
    help: 'Completion tokens relayed (from the reply usage, or streamed deltas counted when a stream has no usage).',
    registry,
  }).only;
  const rateLimited = new Counter({
    name: 'cs_llm_rate_limited_responses_total',
    help: 'HTTP 429 responses sent to clients, by who refused: the daemon itself or the upstream engine.',
    labelNames: ['source'],
    registers,
  });
  const upstreamRequests = new TallyCounter({
    name: 'cs_llm_upstream_requests_total',
    help: 'Requests sent to an upstream engine (attempts).',
    registry,
    labelled: true,
  });
  const upstreamFailures = new Counter({
    name: 'cs_llm_upstream_failures_total',
    help: 'Upstream requests that failed, by upstream and reason (timeout, unavailable, status_NNN, stream_error, ...).',
    labelNames: ['upstream', 'reason'],
    registers,
  });
  const aborted = new Counter({
    name: 'cs_llm_requests_aborted_total',
    help: 'Requests whose reply the client did not take to the end, by reason: client_closed (it went away), client_stalled (it left its socket full longer than daemon.clientStallTimeoutMs and was cut). Neither counts against the upstream.',
    labelNames: ['reason'],
    registers,
  });
  // Registered now so dashboards and alerts can name it; the tools loop fills it.
  const toolCalls = new Counter({
    name: 'cs_llm_tool_calls_total',
    help: 'Tool calls run by the daemon, by tool and outcome.',
    labelNames: ['tool', 'outcome'],
    registers,
  });

  const inFlight = new Gauge({ name: 'cs_llm_requests_in_flight', help: 'Requests being served right now.', registers });
  const queued = new Gauge({
    name: 'cs_llm_requests_queued',
    help: 'Requests waiting inside the daemon (for their session, or for admission).',
    registers,
  });
  const sessionsActive = new Gauge({ name: 'cs_llm_sessions_active', help: 'Sessions not yet expired.', registers });
  const sessionsStored = new Gauge({
    name: 'cs_llm_sessions_stored',
    help: 'Sessions in the database, expired ones not yet swept included.',
    registers,
  });

  const engineUp = new Gauge({
    name: 'cs_llm_engine_up',
    help: "1 when the engine's /metrics answered at the last scrape, else 0.",
    labelNames: ['upstream'],
    registers,
  });
  const engineRunning = new Gauge({
    name: 'cs_llm_engine_requests_running',
    help: 'Requests the engine is running (vllm:num_requests_running).',
    labelNames: ['upstream'],
    registers,
  });
  const engineWaiting = new Gauge({
    name: 'cs_llm_engine_requests_waiting',
    help: 'Requests queued in the engine (vllm:num_requests_waiting).',
    labelNames: ['upstream'],
    registers,
  });
  const engineKvCache = new Gauge({
    name: 'cs_llm_engine_kv_cache_usage_ratio',
    help: "The engine's KV-cache use, 0 to 1 (vllm:kv_cache_usage_perc or vllm:gpu_cache_usage_perc).",
    labelNames: ['upstream'],
    registers,
  });
  const engineStart = new Gauge({
    name: 'cs_llm_engine_start_time_seconds',
    help: "The engine process's start time (its process_start_time_seconds), when it reports one.",
    labelNames: ['upstream'],
    registers,
  });

  // Hot path: the tallies' series kept per route, method and status; cached label objects for the rare ones.
  const series = new RequestSeries(requests, duration);
  const failureLabels = new LabelCache((reason) => ({ upstream: upstreamName, reason }));
  const abortLabels = new LabelCache((reason) => ({ reason }));
  // Made by the first request that reached the upstream: until then /metrics shows no series.
  let upstreamSeries: CounterSeries | null = null;
  const fromDaemon = { source: 'daemon' };
  const fromUpstream = { source: 'upstream' };

  const observe = (r: RequestRecord): void => {
    series.requests(r).inc();
    series.duration(r).observe(r.totalMs / 1000);
    if (r.ttftMs !== undefined) ttft.observe(r.ttftMs / 1000);
    if (r.promptTokens) promptTokens.inc(r.promptTokens);
    if (r.completionTokens) completionTokens.inc(r.completionTokens);
    // upstream_overloaded: the daemon answers for upstreams that all said 429/503 (their overload, not ours).
    if (r.outcome === 'client_closed' || r.outcome === 'client_stalled') aborted.inc(abortLabels.get(r.outcome));
    if (r.status === 429) rateLimited.inc(r.errorCode && r.errorCode !== 'upstream_overloaded' ? fromDaemon : fromUpstream);
    if (r.upstreamMs > 0) {
      overhead.observe(r.overheadMs / 1000);
      (upstreamSeries ??= upstreamRequests.series(upstreamName, () => ({ upstream: upstreamName }))).inc();
      if (r.outcome === 'upstream_failed') upstreamFailures.inc(failureLabels.get(upstreamFailureReason(r)));
    }
  };

  // Scrape-time sources.
  const gpus = createGpuMetrics(registry, options.gpu ?? {});
  const runtime = createRuntimeMetrics(registry, sources.store);

  const sessionCacheMs = options.sessionCountCacheMs ?? 5000;
  let sessionsAt = Number.NEGATIVE_INFINITY;
  const refreshSessions = async () => {
    const now = Date.now();
    if (now - sessionsAt < sessionCacheMs) return;
    sessionsAt = now;
    try {
      const counts = await sources.store.stats.sessionCounts(sources.now());
      sessionsActive.set(counts.live);
      sessionsStored.set(counts.stored);
    } catch {
      // a closed or busy database: keep the last counts
    }
  };

  const engineCacheMs = options.engineCacheMs ?? 1000;
  const engineTimeoutMs = options.engineTimeoutMs ?? 1000;
  let engineAt = Number.NEGATIVE_INFINITY;
  let enginePending: Promise<void> | null = null;
  const engineClients = sources.engines?.length ? sources.engines : [sources.upstream];
  const setEngine = (label: { upstream: string }, figures: EngineFigures) => {
    engineUp.set(label, figures.up ? 1 : 0);
    const pairs: Array<[Gauge, number | null]> = [
      [engineRunning, figures.running],
      [engineWaiting, figures.waiting],
      [engineKvCache, figures.kvCache],
      [engineStart, figures.startTime],
    ];
    for (const [gauge, value] of pairs) {
      if (value === null) gauge.remove(label);
      else gauge.set(label, value);
    }
  };
  const fetchEngine = async (): Promise<void> => {
    await Promise.all(engineClients.map((client) => fetchOneEngine(client)));
  };
  const fetchOneEngine = async (client: Upstream): Promise<void> => {
    let figures: EngineFigures = { up: false, running: null, waiting: null, kvCache: null, startTime: null };
    try {
      const res = await client.request({
        method: 'GET',
        path: '/metrics',
        timeoutMs: engineTimeoutMs,
        signal: AbortSignal.timeout(engineTimeoutMs),
      });
      const text = await readAll(res.body);
      if (res.statusCode === 200) figures = { up: true, ...engineFigures(parsePrometheusText(text)) };
    } catch {
      // not answering, or not Prometheus text: the engine is down as far as metrics go
    }
    setEngine({ upstream: client.url }, figures);
  };
  const refreshEngine = async () => {
    const now = Date.now();
    if (now - engineAt < engineCacheMs) return;
    enginePending ??= fetchEngine().finally(() => {
      engineAt = Date.now();
      enginePending = null;
    });
    await enginePending;
  };

  /** @param selfInFlight requests to leave out of the in-flight count (the scrape itself). */
  const render = async (selfInFlight = 0): Promise<string> => {
    await refreshEngine();
    await refreshSessions();
    await runtime.refresh();
    gpus.refresh();
    info.reset();
    const model = sources.upstreamInfo.known?.id;
    // Not known yet (the engine was not up when the daemon started): ask in the background, it is cached.
    if (model === undefined) void sources.upstreamInfo.get();
    info.set({ version: VERSION, model: model ?? '', upstream: upstreamName }, 1);
    inFlight.set(Math.max(0, sources.inFlight() - selfInFlight));
    queued.set(sources.queued());
    return registry.metrics();
  };

  return {
    registry,
    toolCalls,
    observe,
    render,
    gpus: () => gpus.current(),
    async handler(ctx) {
      const body = await render(1);
      ctx.res.writeHead(200, {
        'content-type': registry.contentType,
        'content-length': Buffer.byteLength(body),
        'cache-control': 'no-store',
      });
      ctx.res.end(body);
    },
    async close() {
      runtime.close();
      await gpus.close();
    },
  };
}
