import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import OpenAI from 'openai';
import { loadConfig } from '../../src/core/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/server.js';
import type { DaemonMetricsOptions } from '../../src/daemon/metrics.js';
import { parsePrometheusText, select, sumOf, type ParsedMetrics } from '../../src/metrics/prom-text.js';
import { startSimulator } from '../../src/sim/server.js';
import { ROOT } from '../helpers/cli.js';
import { requirePromtool } from '../metrics/promtool.js';

const LOOP_SMI = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'loop', 'nvidia-smi');
const NO_GPU: DaemonMetricsOptions = { gpu: { env: { PATH: '/nonexistent-bin' } } };
const CHAT = '/v1/chat/completions';

type SimOptions = Parameters<typeof startSimulator>[0];

async function start(
  t: TestContext,
  options: { sim?: SimOptions | false; metrics?: DaemonMetricsOptions; upstream?: string; daemon?: Record<string, unknown> } = {},
): Promise<Daemon> {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-metrics-'));
  let upstream = options.upstream ?? 'http://127.0.0.1:9';
  if (options.sim !== false) {
    const sim = await startSimulator({ port: 0, accessLog: false, ...options.sim });
    t.after(() => sim.close());
    upstream = sim.url;
  }
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: { daemon: { upstream, ...options.daemon } } });
  const daemon = await startDaemon({ config, paths, port: 0, metrics: options.metrics ?? NO_GPU });
  t.after(() => daemon.close('test over'));
  return daemon;
}

function client(daemon: Daemon, headers: Record<string, string> = {}): OpenAI {
  return new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 30_000, defaultHeaders: headers });
}

async function scrape(
  daemon: Daemon,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string; parsed: ParsedMetrics | null; type: string }> {
  const res = await fetch(`${daemon.url}/metrics`, { headers });
  const text = await res.text();
  return {
    status: res.status,
    text,
    type: res.headers.get('content-type') ?? '',
    parsed: res.status === 200 ? parsePrometheusText(text) : null,
  };
}

/** The onRequest records are emitted after the response ends: wait until the daemon has counted n chat requests. */
async function countedChats(daemon: Daemon, n: number): Promise<ParsedMetrics> {
  for (let i = 0; i < 200; i++) {
    const { parsed } = await scrape(daemon);
    if ((sumOf(parsed!, 'cs_llm_http_requests_total', { route: CHAT }) ?? 0) >= n) return parsed!;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`the daemon never counted ${n} chat requests`);
}

test('counters and histograms move with chat requests, streamed and not', async (t) => {
  const daemon = await start(t);
  const messages = [{ role: 'user' as const, content: 'hello there' }];
  for (let i = 0; i < 3; i++) await client(daemon).chat.completions.create({ model: 'cs-llm-sim', messages });
  for (const headers of [{}, { 'X-Session-Id': 'metrics-1' }] as Array<Record<string, string>>) {
    const stream = await client(daemon, headers).chat.completions.create({ model: 'cs-llm-sim', messages, stream: true });
    for await (const chunk of stream) void chunk;
  }
  const m = await countedChats(daemon, 5);

  assert.equal(sumOf(m, 'cs_llm_http_requests_total', { route: CHAT, method: 'POST', status: '200' }), 5);
  assert.equal(sumOf(m, 'cs_llm_http_request_duration_seconds_count', { route: CHAT, stream: 'false' }), 3);
  assert.equal(sumOf(m, 'cs_llm_http_request_duration_seconds_count', { route: CHAT, stream: 'true' }), 2);
  assert.equal(sumOf(m, 'cs_llm_time_to_first_token_seconds_count'), 2, 'TTFT is observed for the streamed requests');
  assert.equal(sumOf(m, 'cs_llm_daemon_overhead_seconds_count'), 5);
  assert.ok(sumOf(m, 'cs_llm_daemon_overhead_seconds_sum')! > 0);
  assert.ok(sumOf(m, 'cs_llm_prompt_tokens_total')! > 0, 'prompt tokens from the replies usage');
  // Each simulator reply has the same length: the streamed ones add counted deltas to the usage of the others.
  const completion = sumOf(m, 'cs_llm_completion_tokens_total')!;
  assert.ok(completion >= 5, `completion tokens counted: ${completion}`);
  assert.equal(sumOf(m, 'cs_llm_upstream_requests_total'), 5);
  assert.equal(sumOf(m, 'cs_llm_upstream_failures_total'), null);
  assert.equal(sumOf(m, 'cs_llm_requests_in_flight'), 0, 'the scrape does not count itself');
  assert.equal(sumOf(m, 'cs_llm_requests_queued'), 0);
  assert.equal(sumOf(m, 'cs_llm_sessions_active'), 1);
  assert.equal(sumOf(m, 'cs_llm_sessions_stored'), 1);
  assert.equal(sumOf(m, 'cs_llm_engine_up'), 1);
  assert.equal(sumOf(m, 'cs_llm_engine_requests_running'), 0);
  assert.notEqual(sumOf(m, 'cs_llm_engine_kv_cache_usage_ratio'), null, 'KV-cache use relayed from the engine');
  assert.equal(select(m, 'cs_llm_info')[0]?.labels.model, 'cs-llm-sim');
  assert.deepEqual(
    m.samples.filter((s) => s.name.startsWith('cs_llm_gpu_')),
    [],
    'no GPU: the GPU gauges are absent, not zero',
  );
});

test('a non-streaming reply and a stream both carry the overhead header', async (t) => {
  const daemon = await start(t);
  const body = (stream: boolean) => JSON.stringify({ model: 'cs-llm-sim', stream, messages: [{ role: 'user', content: 'hi' }] });
  for (const stream of [false, true]) {
    const res = await fetch(`${daemon.url}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body(stream),
    });
    await res.text();
    const overhead = Number(res.headers.get('x-cs-llm-overhead-ms'));
    assert.ok(
      Number.isFinite(overhead) && overhead >= 0,
      `stream=${stream}: x-cs-llm-overhead-ms=${res.headers.get('x-cs-llm-overhead-ms')}`,
    );
  }
});

test('GPU gauges appear per GPU, in bytes, when nvidia-smi answers', async (t) => {
  const daemon = await start(t, { metrics: { gpu: { nvidiaSmi: LOOP_SMI, intervalMs: 100 } } });
  let m: ParsedMetrics | null = null;
  for (let i = 0; i < 200 && select(m ?? { samples: [], types: new Map() }, 'cs_llm_gpu_memory_total_bytes').length < 2; i++) {
    m = (await scrape(daemon)).parsed;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.equal(sumOf(m!, 'cs_llm_gpu_memory_total_bytes', { gpu: '0' }), 24564 * 1024 * 1024);
  assert.equal(sumOf(m!, 'cs_llm_gpu_memory_used_bytes', { gpu: '0', name: 'NVIDIA GeForce RTX 4090' }), 18742 * 1024 * 1024);
  assert.equal(sumOf(m!, 'cs_llm_gpu_utilization_ratio', { gpu: '0' }), 0.87);
  assert.equal(sumOf(m!, 'cs_llm_gpu_temperature_celsius', { gpu: '1' }), 34);
  assert.equal(sumOf(m!, 'cs_llm_gpu_power_watts', { gpu: '0' }), 312.45);
  assert.equal(sumOf(m!, 'cs_llm_gpu_power_watts', { gpu: '1' }), null, 'a power draw nvidia-smi cannot read is absent');
});

test('an engine that is down: engine_up 0, its figures absent, the failure counted by reason', async (t) => {
  const daemon = await start(t, { sim: false, upstream: 'http://127.0.0.1:9' });
  const res = await fetch(`${daemon.url}${CHAT}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'x', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 502);
  await res.text();
  const m = await countedChats(daemon, 1);
  assert.equal(sumOf(m, 'cs_llm_engine_up'), 0);
  assert.equal(sumOf(m, 'cs_llm_engine_kv_cache_usage_ratio'), null);
  assert.equal(sumOf(m, 'cs_llm_engine_requests_running'), null);
  assert.equal(sumOf(m, 'cs_llm_upstream_failures_total', { reason: 'unavailable' }), 1);
  assert.equal(sumOf(m, 'cs_llm_http_requests_total', { route: CHAT, status: '502' }), 1);
});

test("429s relayed from the engine are counted as the upstream's", async (t) => {
  const daemon = await start(t, { sim: { fail429Rate: 1 } });
  const res = await fetch(`${daemon.url}${CHAT}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 429);
  await res.text();
  const m = await countedChats(daemon, 1);
  assert.equal(sumOf(m, 'cs_llm_rate_limited_responses_total', { source: 'upstream' }), 1);
  assert.equal(sumOf(m, 'cs_llm_upstream_failures_total', { reason: 'status_429' }), 1);
});

test('/metrics needs an admin key once keys exist: none is 401, a tenant key 403, an admin key reads it', async (t) => {
  const daemon = await start(t);
  const { key } = await daemon.store.keys.create('web chat', Date.now(), { tenant: 'shop-a' });
  const { key: admin } = await daemon.store.keys.create('ops', Date.now(), { admin: true });
  assert.equal((await scrape(daemon)).status, 401);
  assert.equal((await scrape(daemon, { authorization: `Bearer ${key}` })).status, 403);
  const withKey = await scrape(daemon, { authorization: `Bearer ${admin}` });
  assert.equal(withKey.status, 200);
  assert.match(withKey.type, /^text\/plain; version=0\.0\.4/);
  assert.ok(withKey.parsed!.types.has('cs_llm_http_requests_total'));
});

test('promtool check metrics accepts the daemon output, GPU gauges and all', async (t) => {
  const promtool = await requirePromtool(t);
  if (!promtool) return;
  const daemon = await start(t, { metrics: { gpu: { nvidiaSmi: LOOP_SMI, intervalMs: 100 } } });
  await client(daemon).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] });
  let text = '';
  for (let i = 0; i < 200 && !text.includes('cs_llm_gpu_memory_used_bytes{'); i++) {
    text = (await scrape(daemon)).text;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  const checked = await execa(promtool, ['check', 'metrics'], { input: text, reject: false, timeout: 30_000 });
  assert.equal(checked.exitCode, 0, `promtool: ${checked.stdout}${checked.stderr}`);
  assert.equal(`${checked.stdout}${checked.stderr}`.trim(), '', 'no lint warnings either');
});

test("429s the daemon answers itself (admission full) are counted as the daemon's", async (t) => {
  const daemon = await start(t, { sim: { ttftMs: 500 }, daemon: { admission: { maxInFlight: 1, maxQueue: 0 } } });
  const send = () =>
    fetch(`${daemon.url}${CHAT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] }),
    });
  const slow = send();
  // The first request holds the only slot while the engine takes 500 ms to its first token.
  let refused: Response | null = null;
  for (let i = 0; i < 50 && !refused; i++) {
    const res = await send();
    await res.text();
    if (res.status === 429) refused = res;
  }
  assert.ok(refused, 'a second request while the slot is taken is refused with 429');
  await (await slow).text();
  const m = await countedChats(daemon, 2);
  assert.ok(sumOf(m, 'cs_llm_rate_limited_responses_total', { source: 'daemon' })! >= 1);
  assert.equal(sumOf(m, 'cs_llm_rate_limited_responses_total', { source: 'upstream' }), null);
});
