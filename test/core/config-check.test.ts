import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, profileFor } from '../../src/core/config.js';
import { checkConfig, checkProfile, CONFIG_SECTIONS } from '../../src/core/config-check.js';
import { zodSchemas } from '../../src/core/config-schema.js';
import { validateChatRequest } from '../../src/daemon/validate.js';

// Every field of the config set, none to its default: the base that the variants below break one field at a time.
const full = {
  engine: {
    kind: 'vllm',
    model: 'qwen2.5-7b-instruct',
    image: 'vllm/vllm-openai:v0.6',
    port: 8001,
    gpus: '0,1',
    placement: 'replicas',
    context: 8192,
    gpuMemoryUtilization: 0.85,
    pullPolicy: 'never',
    hfCacheDir: '/srv/hf',
    hfEndpoint: 'https://hf-mirror.com',
    offline: true,
    loadTimeoutSeconds: 600,
  },
  daemon: {
    host: '0.0.0.0',
    port: 9090,
    upstream: 'http://127.0.0.1:8001',
    bodyLimitBytes: 2048,
    upstreamReplyLimitBytes: 1048576,
    allowedHosts: ['cs.example.com'],
    upstreamTimeoutMs: 5000,
    logContent: true,
    upstreamApiKey: 'sk-local',
    upstreamConnections: 64,
    sessionWaitMs: 0,
    shutdownTimeoutMs: 2000,
    upstreams: [
      {
        name: 'local',
        url: 'http://127.0.0.1:8001/v1',
        apiKeyEnv: 'LOCAL_KEY',
        models: { 'gpt-4o': 'qwen' },
        weight: 2.5,
        kind: 'local',
        mask: true,
        price: { electricityPerKWh: 0.12, gpus: [0, 1], currency: 'CNY', monthly: 100 },
        limits: { rpm: 600, windowMs: 1000 },
      },
      {
        name: 'cloud',
        url: 'https://api.example.com/v1',
        price: { input: 0.15, output: 0.6, cachedInput: 0.075, per: '1K' },
        limits: { tpm: 100000 },
      },
    ],
    allowRemote: true,
    routing: 'cheapest',
    sticky: true,
    maxAttempts: 2,
    retryBudgetPercent: 10.5,
    ejectAfterFailures: 3,
    ejectBaseMs: 1000,
    streamIdleTimeoutMs: 1000,
    clientStallTimeoutMs: 1000,
    admission: { maxInFlight: 0, maxQueue: 10, maxQueueWaitMs: 100 },
    rateLimit: { requestsPerMinute: 60, burst: 10, keys: { csk_ab12: { requestsPerMinute: 5, burst: 1 } } },
    tools: [
      {
        name: 'order_status',
        description: 'Looks up an order',
        parameters: { type: 'object', properties: { id: { type: 'string' } } },
        http: { method: 'POST', url: 'https://orders.internal/{id}', headers: { authorization: '${ORDERS_KEY}' }, timeoutMs: 500 },
      },
    ],
    maxToolRounds: 2,
    toolBreakerFailures: 2,
    toolBreakerCooldownMs: 100,
    shadow: { upstream: 'cloud', percent: 1.5, model: 'gpt-4o-mini' },
  },
  store: {
    path: '/var/lib/cs-llm/cs-llm.db',
    url: 'postgresql://cs@db:5432/cs',
    poolSize: 20,
    synchronous: 'FULL',
    busyTimeoutMs: 100,
    checkpointIntervalMs: 200,
    sweepIntervalMs: 1000,
    redaction: {
      enabled: false,
      email: false,
      phone: false,
      cnId: false,
      card: false,
      passport: false,
      plate: false,
      wechat: false,
      qq: false,
      address: false,
      name: false,
      custom: [{ label: 'ORDER', pattern: 'ORD-\\d{6}', flags: 'i' }],
    },
    attachments: 'keep',
    redactUpstream: 'remote',
    key: 'a2V5',
    encryption: { keyFile: '/etc/cs-llm/store.key' },
    audit: false,
    auditFlushMs: 50,
    usageFlushMs: 1000,
    auditRetentionDays: 0,
    auditMaxQueue: 5,
    auditKeyFile: '/etc/cs-llm/audit.key',
  },
  profiles: {
    support: {
      systemPrompt: 'Be brief.',
      historyTurns: 0,
      ttlSeconds: 60,
      contextTokens: 4096,
      retentionSeconds: 86400,
      tools: ['order_status'],
      maxToolRounds: 3,
    },
  },
  defaultProfile: 'support',
  tenants: { 'acme.cn': { requestsPerMinute: 100, tokensPerDay: 1000000, maxSessions: 50 } },
  models: [{ id: 'my-model', params: 7 }],
};

// First in this file: nothing has loaded zod yet (src/core/zod-sync.ts loads it through require, so it shows in
// require.cache once loaded).
test('a daemon start reads a valid config, its profile and a valid chat request without loading zod', () => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-config-check-'));
  const { config } = loadConfig({ env: { CS_LLM_HOME: home, CS_LLM_DAEMON_PORT: '9000' }, flags: { daemon: { host: undefined } } });
  assert.equal(config.daemon.port, 9000);
  assert.equal(profileFor(config).historyTurns, 10);
  validateChatRequest({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
  const zodLoaded = Object.keys(createRequire(import.meta.url).cache).filter((file) => file.includes('/node_modules/zod/'));
  assert.deepEqual(zodLoaded, []);
  // A bad one still gets zod's message naming the field.
  assert.throws(() => loadConfig({ env: { CS_LLM_HOME: home, CS_LLM_DAEMON_PORT: '0' } }), /field "daemon\.port"/);
});

const BAD = [undefined, null, 'x', '', -1, 0, 0.5, 1e9, 1e300, true, [], {}, ['x'], [{}], { x: 1 }, 'http//x', ' https://a.example', '1M'];

type Json = unknown;
/** Every object and leaf path of the value. */
function paths(value: Json, at: string[] = []): string[][] {
  const out: string[][] = [at];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...paths(v, [...at, String(i)])));
  else if (value && typeof value === 'object') for (const [k, v] of Object.entries(value)) out.push(...paths(v, [...at, k]));
  return out;
}
function edit(value: Json, at: string[], change: (parent: Record<string, unknown>, key: string) => void): Json {
  const copy = structuredClone(value) as Record<string, unknown>;
  let parent = copy;
  for (const k of at.slice(0, -1)) parent = parent[k] as Record<string, unknown>;
  change(parent, at[at.length - 1]!);
  return copy;
}

/** Both verdicts on one input: zod's, and the check's (null: left to zod). */
function judge(input: Json): { zod: boolean; fastTaken: boolean } {
  const zod = zodSchemas().configSchema.safeParse(input);
  const fast = checkConfig(input);
  const where = JSON.stringify(input).slice(0, 300);
  if (!zod.success) assert.equal(fast, null, `the check accepts what zod refuses: ${where}`);
  if (fast !== null) {
    assert.ok(zod.success);
    // Same values, same keys in the same order (what `cs-llm config show` prints).
    assert.deepStrictEqual(fast, zod.data, where);
    assert.equal(JSON.stringify(fast), JSON.stringify(zod.data), where);
  }
  return { zod: zod.success, fastTaken: fast !== null };
}

test('a valid config is read without zod, exactly as zod reads it: the defaults, every field set', () => {
  const flags = { daemon: { host: undefined, port: undefined, upstream: 'http://127.0.0.1:9' }, store: { path: undefined } };
  for (const input of [{}, full, flags, { daemon: {} }, { store: { redaction: {} } }, { profiles: { a: {} } }, { tenants: { t: {} } }]) {
    assert.deepEqual(judge(input), { zod: true, fastTaken: true }, JSON.stringify(input));
  }
  assert.deepStrictEqual(checkProfile({}), zodSchemas().profileSchema.parse({}));
  assert.deepEqual([...CONFIG_SECTIONS], Object.keys(zodSchemas().configSchema.shape));
});

test('the check and zod agree on every field broken, left out or joined by an unknown one', () => {
  let variants = 0;
  let zodValid = 0;
  let leftToZod = 0;
  for (const at of paths(full)) {
    const inputs: Json[] = [];
    if (at.length > 0) {
      for (const bad of BAD) inputs.push(edit(full, at, (p, k) => (p[k] = bad)));
      inputs.push(edit(full, at, (p, k) => (Array.isArray(p) ? p.splice(Number(k), 1) : delete p[k])));
    }
    const target = at.reduce<Json>((v, k) => (v as Record<string, unknown>)[k], full);
    if (target && typeof target === 'object' && !Array.isArray(target)) {
      inputs.push(at.length ? edit(full, at, (p, k) => ((p[k] as Record<string, unknown>).zzUnknown = 1)) : { ...full, zzUnknown: 1 });
    }
    for (const input of inputs) {
      const v = judge(input);
      variants++;
      if (v.zod) zodValid++;
      if (v.zod && !v.fastTaken) leftToZod++;
    }
  }
  assert.ok(variants > 2000, `${variants} variants`);
  // Valid variants (a default left out, another valid value) that the stricter check still left to zod: few.
  assert.ok(zodValid > 100 && leftToZod <= zodValid / 20, `${leftToZod} of ${zodValid} valid variants left to zod`);
});
