/*
 * The config's schema (config-schema.ts) written out with the checks of shape-check.ts, so that a valid
 * config is read without loading zod (#21: zod was 13 MiB of every daemon's RSS, and loaded at every CLI
 * command that reads the config). Field for field the same rules, defaults and order; where a rule here is
 * stricter than zod's, zod decides. A change to the schema needs the same change here: the test
 * test/core/config-check.test.ts gives both the same configs, valid and broken, and fails when they disagree.
 */

import type { Config, Profile } from './config-schema.js';
import {
  any,
  array,
  bool,
  FAIL,
  nullable,
  num,
  object,
  oneOf,
  optional,
  prefault,
  record,
  str,
  withDefault as def,
  type Check,
} from './shape-check.js';
import { TENANT_PATTERN } from './tenant.js';

const int = (min?: number, max?: number) =>
  num({ int: true, ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) });
const port = int(1, 65535);
const amount = num({ min: 0 });

let currencies: Set<string> | undefined;
/** ISO 4217 codes the runtime knows (Intl), as the schema's; read on first use (it reads ICU's data). */
const isCurrency = (c: string) => (currencies ??= new Set(Intl.supportedValuesOf('currency'))).has(c);

const price = object(
  {
    input: optional(amount),
    output: optional(amount),
    cachedInput: optional(amount),
    per: def(oneOf(['1K', '1M']), () => '1M'),
    electricityPerKWh: optional(amount),
    monthly: optional(amount),
    gpus: optional(array(int(0), 1)),
    currency: def(str({ refine: isCurrency }), () => 'USD'),
  },
  (p) =>
    [p.input, p.output, p.cachedInput, p.electricityPerKWh, p.monthly].some((v) => v !== undefined) &&
    (p.input === undefined) === (p.output === undefined) &&
    (p.cachedInput === undefined || p.input !== undefined) &&
    (p.gpus === undefined || p.electricityPerKWh !== undefined),
);

const limits = object(
  { rpm: optional(int(1)), tpm: optional(int(1)), windowMs: def(int(100), () => 60_000) },
  (l) => l.rpm !== undefined || l.tpm !== undefined,
);

const upstream = object({
  name: str({ regex: /^[A-Za-z0-9._-]{1,64}$/ }),
  url: str({ url: true }),
  apiKeyEnv: optional(str({ min: 1 })),
  models: def(record(str()), () => ({})),
  weight: def(num({ min: 0 }), () => 1),
  kind: optional(oneOf(['local', 'remote'])),
  mask: def(bool, () => false),
  price: optional(price),
  limits: optional(limits),
});

const profile = object({
  systemPrompt: def(str(), () => 'You are a helpful customer service assistant.'),
  historyTurns: def(int(0, 1000), () => 10),
  ttlSeconds: def(int(1), () => 3600),
  contextTokens: def(nullable(int(64)), () => null),
  retentionSeconds: def(nullable(int(60)), () => null),
  tools: def(array(str({ min: 1 })), () => []),
  maxToolRounds: optional(int(1, 20)),
});

const tool = object({
  name: str({ regex: /^[A-Za-z0-9_-]{1,64}$/ }),
  description: def(str(), () => ''),
  parameters: def(record(any), () => ({ type: 'object', properties: {} })),
  http: object({
    method: def(oneOf(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']), () => 'GET'),
    url: str({ min: 1 }),
    headers: def(record(str()), () => ({})),
    timeoutMs: def(int(1), () => 15_000),
  }),
});

const tenant = object({
  requestsPerMinute: def(int(0), () => 0),
  tokensPerDay: def(int(0), () => 0),
  maxSessions: def(int(0), () => 0),
});

/** A custom redaction pattern: a regular expression that compiles and does not match the empty string. */
const usablePattern = (p: string) => {
  try {
    new RegExp(p, 'g');
    return !new RegExp(p).test('');
  } catch {
    return false;
  }
};

const engine = object({
  kind: def(oneOf(['auto', 'vllm', 'cpu', 'sim']), () => 'auto'),
  model: optional(str({ min: 1 })),
  image: optional(str({ min: 1 })),
  port: def(port, () => 8000),
  gpus: optional(str()),
  placement: def(oneOf(['auto', 'replicas', 'tensor-parallel']), () => 'auto'),
  context: optional(int(256)),
  gpuMemoryUtilization: def(num({ gt: 0.1, max: 0.99 }), () => 0.9),
  pullPolicy: def(oneOf(['if-missing', 'always', 'never']), () => 'if-missing'),
  hfCacheDir: optional(str()),
  hfEndpoint: optional(str({ url: true })),
  offline: def(bool, () => false),
  loadTimeoutSeconds: optional(int(1)),
});

const daemon = object({
  host: def(str(), () => '127.0.0.1'),
  port: def(port, () => 8080),
  upstream: def(str({ url: true }), () => 'http://127.0.0.1:8000'),
  bodyLimitBytes: def(int(1024), () => 1024 * 1024),
  upstreamReplyLimitBytes: def(int(64 * 1024), () => 64 * 1024 * 1024),
  allowedHosts: def(array(str()), () => []),
  upstreamTimeoutMs: def(int(100), () => 120_000),
  logContent: def(bool, () => false),
  upstreamApiKey: optional(str({ min: 1 })),
  upstreamConnections: def(int(1, 1024), () => 128),
  sessionWaitMs: def(int(0), () => 30_000),
  shutdownTimeoutMs: def(int(0), () => 10_000),
  upstreams: def(array(upstream), () => []),
  allowRemote: def(bool, () => false),
  routing: def(oneOf(['weighted', 'cheapest']), () => 'weighted'),
  sticky: def(bool, () => false),
  maxAttempts: def(int(1, 10), () => 3),
  retryBudgetPercent: def(num({ min: 0, max: 100 }), () => 20),
  ejectAfterFailures: def(int(1), () => 5),
  ejectBaseMs: def(int(1), () => 30_000),
  streamIdleTimeoutMs: def(int(100), () => 60_000),
  clientStallTimeoutMs: def(int(100), () => 60_000),
  admission: prefault(
    object({
      maxInFlight: def(int(0), () => 256),
      maxQueue: def(int(0), () => 512),
      maxQueueWaitMs: def(int(0), () => 5_000),
    }),
  ),
  rateLimit: prefault(
    object({
      requestsPerMinute: def(int(0), () => 0),
      burst: optional(int(1)),
      keys: def(record(object({ requestsPerMinute: int(0), burst: optional(int(1)) }), /^\S+$/), () => ({})),
    }),
  ),
  tools: def(array(tool), () => []),
  maxToolRounds: def(int(1, 20), () => 4),
  toolBreakerFailures: def(int(1), () => 5),
  toolBreakerCooldownMs: def(int(1), () => 30_000),
  shadow: optional(
    object({
      upstream: str({ min: 1 }),
      percent: def(num({ min: 0, max: 100 }), () => 5),
      model: optional(str({ min: 1 })),
    }),
  ),
});

const on = () => true;
const store = object({
  path: optional(str()),
  url: optional(str({ regex: /^postgres(ql)?:\/\//i })),
  poolSize: def(int(1, 1000), () => 10),
  synchronous: def(oneOf(['NORMAL', 'FULL']), () => 'NORMAL'),
  busyTimeoutMs: def(int(0), () => 5000),
  checkpointIntervalMs: def(int(100), () => 1000),
  sweepIntervalMs: def(int(100), () => 60_000),
  redaction: prefault(
    object({
      enabled: def(bool, on),
      email: def(bool, on),
      phone: def(bool, on),
      cnId: def(bool, on),
      card: def(bool, on),
      passport: def(bool, on),
      plate: def(bool, on),
      wechat: def(bool, on),
      qq: def(bool, on),
      address: def(bool, on),
      name: def(bool, on),
      custom: def(
        array(
          object({
            label: str({ regex: /^[A-Za-z][A-Za-z0-9_]{0,31}$/ }),
            pattern: str({ min: 1, refine: usablePattern }),
            flags: optional(str({ regex: /^[imsu]*$/ })),
          }),
        ),
        () => [],
      ),
    }),
  ),
  attachments: def(oneOf(['drop', 'keep']), () => 'drop'),
  redactUpstream: def(oneOf(['never', 'remote', 'always']), () => 'never'),
  key: optional(str({ min: 1 })),
  encryption: prefault(object({ keyFile: optional(str({ min: 1 })) })),
  audit: def(bool, on),
  auditFlushMs: def(int(10, 10_000), () => 100),
  usageFlushMs: def(int(100, 600_000), () => 10_000),
  auditRetentionDays: def(int(0, 36_500), () => 365),
  auditMaxQueue: def(int(1, 10_000_000), () => 10_000),
  auditKeyFile: optional(str({ min: 1 })),
});

const config = object({
  engine: prefault(engine),
  daemon: prefault(daemon),
  store: prefault(store),
  profiles: def(record(profile), () => ({})),
  defaultProfile: def(str(), () => 'default'),
  tenants: def(record(tenant, TENANT_PATTERN), () => ({})),
  models: def(array(record(any)), () => []),
});

/** The config's top-level sections, for the environment layer (CS_LLM_<SECTION>_<FIELD>). */
export const CONFIG_SECTIONS = ['engine', 'daemon', 'store', 'profiles', 'defaultProfile', 'tenants', 'models'] as const;

const result = <T>(check: Check, input: unknown): T | null => {
  const out = check(input);
  return out === FAIL ? null : (out as T);
};

/** The config as zod's parse gives it, or null: not valid here, for zod to judge (and name what is wrong). */
export function checkConfig(input: unknown): Config | null {
  return result<Config>(config, input);
}

/** A profile as zod's parse gives it, or null (see checkConfig). */
export function checkProfile(input: unknown): Profile | null {
  return result<Profile>(profile, input);
}
