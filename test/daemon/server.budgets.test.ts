// Rate-limit budgets per upstream and cheapest routing, against simulators that refuse like a provider above
// their limits (docs/cost-and-capacity.md). Time is compressed ten times: the limits count per 6 s window
// instead of per minute (--limit-window-ms, upstreams[].limits.windowMs), and 300 requests arrive over 6 s
// instead of a minute; every ratio of the test stays the same.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { deepMerge, loadConfig } from '../../src/core/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/server.js';
import { parsePrometheusText, sumOf } from '../../src/metrics/prom-text.js';
import { startSimulator } from '../../src/sim/server.js';
import { offerEvenly } from '../helpers/offered-load.js';

type After = { after(fn: () => Promise<void> | void): void };
const WINDOW_MS = 6000;
const ASK = { model: 'cs-llm-sim', messages: [{ role: 'user', content: 'Where is my order?' }], max_tokens: 16 };

async function daemon(t: After, daemonConfig: Record<string, unknown>): Promise<Daemon> {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-budgets-'));
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: deepMerge({ daemon: daemonConfig }) });
  const d = await startDaemon({ config, paths, port: 0, metrics: { gpu: false } });
  t.after(() => d.close('test over'));
  return d;
}

/** Three providers allowing 60, 120 and 200 requests per window, weighted 30/40/30, each with its price. */
async function threeProviders(t: After, routing: 'weighted' | 'cheapest') {
  const tiers = [
    { name: 'a', rpm: 60, weight: 30, price: { input: 0.6, output: 2.4 } },
    { name: 'b', rpm: 120, weight: 40, price: { input: 1.2, output: 4.8 } },
    { name: 'c', rpm: 200, weight: 30, price: { input: 0.3, output: 1.2 } },
  ];
  const sims = await Promise.all(
    tiers.map((p) => startSimulator({ port: 0, rpmLimit: p.rpm, limitWindowMs: WINDOW_MS, accessLog: false })),
  );
  for (const s of sims) t.after(() => s.close());
  const d = await daemon(t, {
    routing,
    upstreams: tiers.map((p, i) => ({
      name: p.name,
      url: sims[i]!.url,
      weight: p.weight,
      price: { ...p.price, currency: 'USD' },
      limits: { rpm: p.rpm, windowMs: WINDOW_MS },
    })),
  });
  const offered = await offerEvenly(d.url, 300, WINDOW_MS, ASK);
  const sent = sims.reduce((n, s) => n + s.stats().requests, 0);
  const refused = sims.reduce((n, s) => n + s.stats().rateLimited, 0);
  const metrics = parsePrometheusText(await (await fetch(`${d.url}/metrics`)).text());
  return {
    clientLimited: offered.statuses.get(429) ?? 0,
    ok: offered.statuses.get(200) ?? 0,
    errors: offered.errors,
    sent,
    refused,
    served: Object.fromEntries(tiers.map((p, i) => [p.name, sims[i]!.stats().completed])),
    cost: sumOf(metrics, 'cs_llm_cost_total') ?? 0,
  };
}

test('300 requests a window over providers allowing 60, 120 and 200: under 0.3% client 429s, under 1% refused upstream, and cheapest costs less', async (t) => {
  const weighted = await threeProviders(t, 'weighted');
  t.diagnostic(`weighted: ${JSON.stringify(weighted)}`);
  assert.equal(weighted.errors, 0);
  assert.ok(weighted.clientLimited / 300 < 0.003, `${weighted.clientLimited} client 429s`);
  assert.ok(weighted.refused / weighted.sent < 0.01, `${weighted.refused} of ${weighted.sent} refused upstream`);

  const cheapest = await threeProviders(t, 'cheapest');
  t.diagnostic(`cheapest: ${JSON.stringify(cheapest)}`);
  assert.equal(cheapest.errors, 0);
  assert.ok(cheapest.clientLimited / 300 < 0.003, `${cheapest.clientLimited} client 429s`);
  assert.ok(cheapest.refused / cheapest.sent < 0.01, `${cheapest.refused} of ${cheapest.sent} refused upstream`);
  assert.ok(cheapest.served.c! > weighted.served.c!, 'the cheapest provider got more of the traffic');
  assert.ok(cheapest.cost < weighted.cost, `cheapest ${cheapest.cost} USD, weighted ${weighted.cost} USD`);
  t.diagnostic(`cheapest saves ${(100 * (1 - cheapest.cost / weighted.cost)).toFixed(1)}% against weighted`);
});

test('when every upstream is at its limit a request waits for budget, then gets 429 with Retry-After; none reaches the provider over it', async (t) => {
  const sim = await startSimulator({ port: 0, rpmLimit: 2, limitWindowMs: 60_000, accessLog: false });
  t.after(() => sim.close());
  const d = await daemon(t, {
    upstreams: [{ name: 'only', url: sim.url, limits: { rpm: 2 } }],
    admission: { maxQueueWaitMs: 200 },
  });
  const post = () =>
    fetch(`${d.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ASK) });
  assert.equal((await post()).status, 200);
  assert.equal((await post()).status, 200);
  const refused = await post();
  assert.equal(refused.status, 429);
  assert.ok(Number(refused.headers.get('retry-after')) >= 59, `Retry-After ${refused.headers.get('retry-after')}`);
  const body = (await refused.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'upstream_budget_exhausted');
  assert.match(body.error.message, /rate limit/);
  assert.equal(sim.stats().requests, 2, 'the provider never saw the third');
  const metrics = parsePrometheusText(await (await fetch(`${d.url}/metrics`)).text());
  assert.equal(sumOf(metrics, 'cs_llm_upstream_budget_used_ratio', { upstream: 'only', limit: 'rpm' }), 1);
  assert.equal(sumOf(metrics, 'cs_llm_rate_limited_responses_total', { source: 'daemon' }), 1);
});

test('a waiting request goes as soon as the window has room for it', async (t) => {
  const sim = await startSimulator({ port: 0, rpmLimit: 1, limitWindowMs: 500, accessLog: false });
  t.after(() => sim.close());
  const d = await daemon(t, {
    upstreams: [{ name: 'only', url: sim.url, limits: { rpm: 1, windowMs: 500 } }],
    admission: { maxQueueWaitMs: 10_000 },
  });
  const post = () =>
    fetch(`${d.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(ASK) });
  const statuses = await Promise.all([post(), post(), post()].map(async (r) => (await r).status));
  assert.deepEqual(statuses, [200, 200, 200]);
  assert.equal(sim.stats().rateLimited, 0);
});

test('a token budget, estimated before sending and corrected after, keeps a provider under its TPM', async (t) => {
  const limited = await startSimulator({ port: 0, tpmLimit: 400, accessLog: false });
  const other = await startSimulator({ port: 0, accessLog: false });
  t.after(() => limited.close());
  t.after(() => other.close());
  const d = await daemon(t, {
    upstreams: [
      { name: 'limited', url: limited.url, weight: 1000, limits: { tpm: 400 } },
      { name: 'other', url: other.url, weight: 1 },
    ],
  });
  for (let i = 0; i < 20; i++) {
    const res = await fetch(`${d.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(ASK),
    });
    assert.equal(res.status, 200);
  }
  assert.equal(limited.stats().rateLimited, 0);
  const used = limited.stats().promptTokens + limited.stats().generationTokens;
  assert.ok(used <= 400 && used > 200, `the limited provider served ${used} tokens`);
  assert.ok(other.stats().completed > 0);
});

test('cheapest routing refuses to start when token prices are in different currencies', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-budgets-'));
  const { config, paths } = loadConfig({
    env: { CS_LLM_HOME: home },
    flags: deepMerge({
      daemon: {
        routing: 'cheapest',
        upstreams: [
          { name: 'a', url: 'http://127.0.0.1:9', price: { input: 1, output: 2, currency: 'USD' } },
          { name: 'b', url: 'http://127.0.0.1:10', price: { input: 5, output: 9, currency: 'CNY' } },
        ],
      },
    }),
  });
  await assert.rejects(startDaemon({ config, paths, port: 0, metrics: { gpu: false } }), /USD and CNY/);
});
