import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePrometheusText } from '../../src/metrics/prom-text.js';
import { applyFailure, applyScrape, initialState, type DashboardState } from '../../src/dashboard/state.js';

const CHAT = 'route="/v1/chat/completions"';

/** The daemon's /metrics text with the figures the dashboard reads. */
function scrape(o: {
  ok: number;
  errors?: number;
  limited?: number;
  tokens: number;
  fast: number;
  slow: number;
  start?: number;
  engineUp?: number;
  gpu?: boolean;
}): string {
  const total = o.fast + o.slow;
  return `cs_llm_info{version="0.1.0",model="qwen",upstream="http://127.0.0.1:8000"} 1
cs_llm_start_time_seconds ${o.start ?? 5}
cs_llm_http_requests_total{${CHAT},method="POST",status="200"} ${o.ok}
cs_llm_http_requests_total{${CHAT},method="POST",status="502"} ${o.errors ?? 0}
cs_llm_http_requests_total{${CHAT},method="POST",status="429"} ${o.limited ?? 0}
cs_llm_http_requests_total{route="/metrics",method="GET",status="200"} 99
cs_llm_http_request_duration_seconds_bucket{le="0.1",${CHAT},stream="false"} ${o.fast}
cs_llm_http_request_duration_seconds_bucket{le="1",${CHAT},stream="false"} ${total}
cs_llm_http_request_duration_seconds_bucket{le="+Inf",${CHAT},stream="false"} ${total}
cs_llm_completion_tokens_total ${o.tokens}
cs_llm_requests_in_flight 2
cs_llm_requests_queued 1
cs_llm_sessions_active 7
cs_llm_engine_up{upstream="u"} ${o.engineUp ?? 1}
cs_llm_engine_kv_cache_usage_ratio{upstream="u"} 0.42
${
  o.gpu === false
    ? ''
    : `cs_llm_gpu_memory_used_bytes{gpu="0",uuid="GPU-1",name="NVIDIA GeForce RTX 4090"} ${12 * 1024 ** 3}
cs_llm_gpu_memory_total_bytes{gpu="0",uuid="GPU-1",name="NVIDIA GeForce RTX 4090"} ${24 * 1024 ** 3}
cs_llm_gpu_temperature_celsius{gpu="0",uuid="GPU-1",name="NVIDIA GeForce RTX 4090"} 65`
}
`;
}

function two(first: Parameters<typeof scrape>[0], second: Parameters<typeof scrape>[0]): DashboardState {
  const s1 = applyScrape(initialState('http://d', 1000), parsePrometheusText(scrape(first)), 10_000);
  return applyScrape(s1, parsePrometheusText(scrape(second)), 12_000);
}

test('rates and quantiles come from the difference between two scrapes', () => {
  const s = two({ ok: 10, tokens: 100, fast: 10, slow: 0 }, { ok: 30, tokens: 500, fast: 10, slow: 20 });
  assert.equal(s.requestsPerSecond, 10, '20 chat requests in 2 s; /metrics scrapes are not counted');
  assert.equal(s.tokensPerSecond, 200);
  // Every request in the window was slow: the window's median is above 0.1 s although most ever were fast.
  assert.ok(s.latency.p50! > 0.1 && s.latency.p50! <= 1, `p50 ${s.latency.p50}`);
  assert.deepEqual(s.rpsHistory, [10]);
  assert.equal(s.errorRate, 0);
  assert.equal(s.model, 'qwen');
  assert.equal(s.uptimeSeconds, 7, 'started at 5 s, scraped at 12 s');
});

test('error and 429 rates are shares of the chat requests in the window', () => {
  const s = two({ ok: 0, tokens: 0, fast: 0, slow: 0 }, { ok: 90, errors: 5, limited: 5, tokens: 0, fast: 100, slow: 0 });
  assert.equal(s.errorRate, 0.05);
  assert.equal(s.rateLimitedRate, 0.05);
});

test('gauges, the engine and the GPUs are read as they are', () => {
  const s = two({ ok: 1, tokens: 1, fast: 1, slow: 0 }, { ok: 1, tokens: 1, fast: 1, slow: 0 });
  assert.equal(s.inFlight, 2);
  assert.equal(s.queued, 1);
  assert.equal(s.sessionsActive, 7);
  assert.equal(s.kvCacheUsage, 0.42);
  assert.equal(s.engineUp, true);
  assert.deepEqual(s.gpus, [
    {
      index: 0,
      name: 'NVIDIA GeForce RTX 4090',
      memoryUsedBytes: 12 * 1024 ** 3,
      memoryTotalBytes: 24 * 1024 ** 3,
      utilization: null,
      temperatureC: 65,
      powerW: null,
    },
  ]);
  assert.deepEqual(two({ ok: 1, tokens: 1, fast: 1, slow: 0, gpu: false }, { ok: 1, tokens: 1, fast: 1, slow: 0, gpu: false }).gpus, []);
});

test('a daemon that goes away and comes back leaves events and keeps its last figures meanwhile', () => {
  let s = two({ ok: 1, tokens: 1, fast: 1, slow: 0 }, { ok: 3, tokens: 1, fast: 3, slow: 0 });
  s = applyFailure(s, 'ECONNREFUSED', 13_000);
  s = applyFailure(s, 'ECONNREFUSED', 14_000);
  assert.equal(s.reachable, false);
  assert.equal(s.unreachableSince, 13_000, 'since the first failure');
  assert.equal(s.requestsPerSecond, 1, 'the last figures stay on screen');
  s = applyScrape(s, parsePrometheusText(scrape({ ok: 3, tokens: 1, fast: 3, slow: 0 })), 20_000);
  assert.equal(s.reachable, true);
  assert.deepEqual(
    s.events.map((e) => e.text),
    ['connected to http://d', 'daemon unreachable: ECONNREFUSED', 'daemon back after 7s'],
  );
  assert.deepEqual(
    s.events.map((e) => e.id),
    [1, 2, 3],
  );
});

test('a restarted daemon, a stopped engine and a restarted engine each leave an event', () => {
  let s = two({ ok: 5, tokens: 1, fast: 5, slow: 0 }, { ok: 1, tokens: 1, fast: 1, slow: 0, start: 8, engineUp: 0 });
  assert.deepEqual(s.events.map((e) => e.text).slice(1), ['the daemon restarted (its counters start again)', 'engine not answering']);
  assert.equal(s.requestsPerSecond, null, 'no rate across a restart');
  s = applyScrape(s, parsePrometheusText(scrape({ ok: 1, tokens: 1, fast: 1, slow: 0, start: 8, engineUp: 1 })), 13_000);
  assert.equal(s.events[s.events.length - 1]!.text, 'engine answering again');
});

test('the requests history keeps one minute of scrapes', () => {
  let s = initialState('http://d', 1000);
  for (let i = 0; i < 100; i++) s = applyScrape(s, parsePrometheusText(scrape({ ok: i * 2, tokens: 0, fast: i, slow: 0 })), i * 1000);
  assert.equal(s.rpsHistory.length, 60);
  assert.equal(s.rpsHistory[59], 2);
});

test('upstream ejections and calls refused by an open tool breaker appear as events', () => {
  const base = scrape({ ok: 1, tokens: 1, fast: 1, slow: 0 });
  const first = `${base}cs_llm_upstream_ejections_total{upstream="http://a:8000"} 1
cs_llm_tool_calls_total{tool="get_logistics",outcome="ok"} 4
`;
  const second = `${base}cs_llm_upstream_ejections_total{upstream="http://a:8000"} 2
cs_llm_upstream_ejections_total{upstream="http://b:8000"} 0
cs_llm_tool_calls_total{tool="get_logistics",outcome="ok"} 5
cs_llm_tool_calls_total{tool="get_logistics",outcome="breaker_open"} 3
`;
  let s = applyScrape(initialState('http://d', 1000), parsePrometheusText(first), 10_000);
  s = applyScrape(s, parsePrometheusText(second), 11_000);
  assert.deepEqual(s.events.map((e) => e.text).slice(1), [
    'upstream http://a:8000 ejected after consecutive failures',
    'tool get_logistics: breaker open, 3 calls refused',
  ]);
  s = applyScrape(s, parsePrometheusText(second), 12_000);
  assert.equal(s.events.length, 3, 'no new event while the counts stand still');
});

test('cost per hour and per 1k sessions come from the cost counters since the daemon started, per currency', () => {
  const text = `cs_llm_start_time_seconds 0
cs_llm_cost_total{upstream="gpu0",tenant="default",currency="CNY"} 1.5
cs_llm_cost_total{upstream="gpu0",tenant="(idle)",currency="CNY"} 0.5
cs_llm_cost_total{upstream="cloud",tenant="default",currency="USD"} 0.3
cs_llm_sessions_started_total{tenant="default"} 400
`;
  const s = applyScrape(initialState('http://d', 1000), parsePrometheusText(text), 2 * 3_600_000);
  assert.deepEqual(s.cost, [
    { currency: 'CNY', perHour: 1, per1kSessions: 5 },
    { currency: 'USD', perHour: 0.15, per1kSessions: 0.75 },
  ]);
  assert.deepEqual(applyScrape(initialState('http://d', 1000), parsePrometheusText('cs_llm_start_time_seconds 0\n'), 10_000).cost, []);
});

test("the daemon's per-engine gauges become one engine view per upstream", () => {
  const text = [
    'cs_llm_engine_up{upstream="http://127.0.0.1:8000"} 1',
    'cs_llm_engine_up{upstream="http://127.0.0.1:8001"} 0',
    'cs_llm_engine_requests_running{upstream="http://127.0.0.1:8000"} 3',
    'cs_llm_engine_requests_waiting{upstream="http://127.0.0.1:8000"} 1',
    'cs_llm_engine_kv_cache_usage_ratio{upstream="http://127.0.0.1:8000"} 0.25',
  ].join('\n');
  const s = applyScrape(initialState('http://d', 1000), parsePrometheusText(`${text}\n`), 10_000);
  assert.deepEqual(s.engines, [
    { upstream: 'http://127.0.0.1:8000', up: true, running: 3, waiting: 1, kvCache: 0.25 },
    { upstream: 'http://127.0.0.1:8001', up: false, running: null, waiting: null, kvCache: null },
  ]);
});

test("per-tenant requests, tokens and quota refusals come from the tenant counters' differences between two scrapes", () => {
  const metrics = (requests: number, tokens: number, refused: number) =>
    parsePrometheusText(`${scrape({ ok: 1, tokens: 1, fast: 1, slow: 0 })}
cs_llm_tenant_requests_total{tenant="shop-a"} ${requests}
cs_llm_tenant_requests_total{tenant="shop-b"} 7
cs_llm_tokens_total{upstream="u",tenant="shop-a",type="prompt"} ${tokens}
cs_llm_tokens_total{upstream="u",tenant="shop-a",type="cached_prompt"} ${tokens}
cs_llm_tokens_total{upstream="u",tenant="shop-a",type="completion"} ${tokens}
cs_llm_tokens_total{upstream="u",tenant="(shadow)",type="completion"} 999
cs_llm_tenant_quota_exceeded_total{tenant="shop-a",quota="requests"} ${refused}
cs_llm_tenant_quota_exceeded_total{tenant="shop-a",quota="tokens"} 1
cs_llm_tenant_tokens_today{tenant="shop-a"} 5000
cs_llm_tenant_tokens_per_day_limit{tenant="shop-a"} 10000
`);
  const s1 = applyScrape(initialState('http://d', 1000), metrics(10, 100, 0), 10_000);
  assert.equal(s1.tenants.find((t) => t.tenant === 'shop-a')?.requestsPerSecond, null, 'no rate from one scrape');
  const s2 = applyScrape(s1, metrics(30, 300, 3), 12_000);
  assert.deepEqual(
    s2.tenants.map((t) => [t.tenant, t.requestsPerSecond, t.tokensPerSecond, t.refused, t.tokensToday, t.tokensPerDay]),
    [
      ['shop-a', 10, 200, 3, 5000, 10000],
      ['shop-b', 0, 0, 0, null, null],
    ],
  );
});
