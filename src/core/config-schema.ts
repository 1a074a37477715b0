/*
 * The config's zod schemas (config.ts has the sources and their order). Built only when needed: the
 * hand-written check in config-check.ts accepts a valid config without zod, which is 13 MiB of a daemon's RSS
 * and about 30 ms of its start (#21); zod then decides only what that check refuses, and names the field.
 * The types of the config come from here too.
 */

import type { z as Zod } from 'zod';
import { TENANT_PATTERN } from './tenant.js';
import { upstreamSchemas } from './upstream-config.js';
import { zod } from './zod-sync.js';

export type { PriceConfig, UpstreamConfig } from './upstream-config.js';

/** Every schema of the config, built with the zod it is given. */
export function configSchemas(z: typeof Zod) {
  const { priceSchema, limitsSchema, upstreamSchema } = upstreamSchemas(z);
  const port = z.number().int().min(1).max(65535);

  const profileSchema = z
    .object({
      systemPrompt: z.string().default('You are a helpful customer service assistant.'),
      /** Turns (a user message and its reply) kept in the window sent to the model. */
      historyTurns: z.number().int().min(0).max(1000).default(10),
      /** Sliding time-to-live of a session, renewed on each turn. */
      ttlSeconds: z.number().int().min(1).default(3600),
      /** Context length used to bound the window by tokens; null: take the engine's. */
      contextTokens: z.number().int().min(64).nullable().default(null),
      /** The longest a session is kept from its first turn, however active (a cap on the sliding TTL); null: the TTL alone. */
      retentionSeconds: z.number().int().min(60).nullable().default(null),
      /** Server-side tools (names from daemon.tools) offered to the model on this profile's turns. */
      tools: z.array(z.string().min(1)).default([]),
      /** Model rounds that may end in tool calls before the daemon gives up (overrides daemon.maxToolRounds). */
      maxToolRounds: z.number().int().min(1).max(20).optional(),
    })
    .strict();

  /** A server-side tool: JSON Schema parameters and the HTTP call that runs it. */
  const toolSchema = z
    .object({
      name: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'letters, digits, "_" or "-" (1-64)'),
      description: z.string().default(''),
      parameters: z.record(z.string(), z.unknown()).default({ type: 'object', properties: {} }),
      http: z
        .object({
          method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']).default('GET'),
          /** {arg} placeholders are replaced by the URL-encoded argument. */
          url: z.string().min(1),
          /** Values may reference ${ENV_VAR} (secrets stay out of the file). */
          headers: z.record(z.string(), z.string()).default({}),
          timeoutMs: z.number().int().min(1).default(15_000),
        })
        .strict(),
    })
    .strict();

  /** A tenant's quotas; each 0 (the default): no limit. */
  const tenantSchema = z
    .object({
      /** API requests (/v1/*) per minute, all of the tenant's keys together (a minute's worth may come at once). */
      requestsPerMinute: z.number().int().min(0).default(0),
      /** Prompt and completion tokens per UTC day, from the engine's usage. */
      tokensPerDay: z.number().int().min(0).default(0),
      /** Live sessions at once; a turn that would start one more is refused. */
      maxSessions: z.number().int().min(0).default(0),
    })
    .strict();

  const configSchema = z
    .object({
      engine: z
        .object({
          kind: z.enum(['auto', 'vllm', 'cpu', 'sim']).default('auto'),
          model: z.string().min(1).optional(),
          image: z.string().min(1).optional(),
          port: port.default(8000),
          /** "all", "none" or indexes ("0,1"); unset: the engine's default (all for vllm, none for sim). */
          gpus: z.string().optional(),
          /**
           * Several GPUs: auto (one engine per GPU when the model fits one, else tensor parallel over the fewest
           * that hold it), replicas (one engine per GPU) or tensor-parallel (one engine over all of them).
           */
          placement: z.enum(['auto', 'replicas', 'tensor-parallel']).default('auto'),
          context: z.number().int().min(256).optional(),
          gpuMemoryUtilization: z.number().gt(0.1).max(0.99).default(0.9),
          pullPolicy: z.enum(['if-missing', 'always', 'never']).default('if-missing'),
          hfCacheDir: z.string().optional(),
          /** Hugging Face endpoint or mirror for GGUF downloads (cs-llm models pull); unset: HF_ENDPOINT, else https://huggingface.co. */
          hfEndpoint: z.string().url().optional(),
          offline: z.boolean().default(false),
          /** Limit for weights download + load (readiness "loading"); unset: the engine kind's default. */
          loadTimeoutSeconds: z.number().int().min(1).optional(),
        })
        .strict()
        .prefault({}),
      daemon: z
        .object({
          host: z.string().default('127.0.0.1'),
          port: port.default(8080),
          upstream: z.string().url().default('http://127.0.0.1:8000'),
          bodyLimitBytes: z
            .number()
            .int()
            .min(1024)
            .default(1024 * 1024),
          /**
           * The largest whole (non-streamed) reply taken from an upstream: a broken or hostile one could
           * otherwise fill the daemon's memory. 64 MiB holds a 128k-token completion; logprobs can need more.
           */
          upstreamReplyLimitBytes: z
            .number()
            .int()
            .min(64 * 1024)
            .default(64 * 1024 * 1024),
          /** Extra Host header values accepted besides loopback names (DNS-rebinding defence). */
          allowedHosts: z.array(z.string()).default([]),
          upstreamTimeoutMs: z.number().int().min(100).default(120_000),
          logContent: z.boolean().default(false),
          /** Key the daemon sends to the upstream engine (never the client's key). */
          upstreamApiKey: z.string().min(1).optional(),
          /** Pooled keep-alive connections to the upstream. */
          upstreamConnections: z.number().int().min(1).max(1024).default(128),
          /** How long a request waits for another request on the same session before 409. */
          sessionWaitMs: z.number().int().min(0).default(30_000),
          /** On SIGTERM/SIGINT/SIGHUP, how long in-flight requests may finish before connections are cut. */
          shutdownTimeoutMs: z.number().int().min(0).default(10_000),
          /** Upstream engines; empty: one local upstream at daemon.upstream (docs/routing-and-tools.md). */
          upstreams: z.array(upstreamSchema).default([]),
          /** Remote upstreams (kind "remote") are used only when this is true: private by default. */
          allowRemote: z.boolean().default(false),
          /** weighted: by upstreams[].weight; cheapest: the lowest price that still has budget, by weight among equals. */
          routing: z.enum(['weighted', 'cheapest'], { message: 'must be "weighted" or "cheapest"' }).default('weighted'),
          /** Session turns keep to one upstream (hash of the session id) while it is healthy: reuses its prefix cache. */
          sticky: z.boolean().default(false),
          /** Upstream attempts per request, the first included (failover before the first byte). */
          maxAttempts: z.number().int().min(1).max(10).default(3),
          /** Retries allowed as a share of requests over the last 10 s (plus a minimum of 3 per 10 s). */
          retryBudgetPercent: z.number().min(0).max(100).default(20),
          /** Consecutive failures (connection errors, timeouts, 5xx) that take an upstream out. */
          ejectAfterFailures: z.number().int().min(1).default(5),
          /** First ejection's length; doubles with each ejection in a row, up to 10 times this. */
          ejectBaseMs: z.number().int().min(1).default(30_000),
          /** Longest silence between chunks of an upstream reply once it started (streams: error event, nothing stored). */
          streamIdleTimeoutMs: z.number().int().min(100).default(60_000),
          /** Longest a client may leave its socket full (not reading) mid-reply before it is cut; not the upstream's fault. */
          clientStallTimeoutMs: z.number().int().min(100).default(60_000),
          admission: z
            .object({
              /** Chat requests in flight to the upstreams at once; 0: no limit. */
              maxInFlight: z.number().int().min(0).default(256),
              /** Requests that may wait for a slot; beyond that 429 at once. */
              maxQueue: z.number().int().min(0).default(512),
              /** Longest wait for a slot before 429. */
              maxQueueWaitMs: z.number().int().min(0).default(5_000),
            })
            .strict()
            .prefault({}),
          /** Per-key request rate limits on /v1/* (token buckets); 0 requests per minute: none. */
          rateLimit: z
            .object({
              requestsPerMinute: z.number().int().min(0).default(0),
              burst: z.number().int().min(1).optional(),
              /** By key prefix as `cs-llm keys list` shows it; overrides the default for that key. */
              keys: z
                .record(
                  z.string().regex(/^\S+$/),
                  z.object({ requestsPerMinute: z.number().int().min(0), burst: z.number().int().min(1).optional() }).strict(),
                )
                .default({}),
            })
            .strict()
            .prefault({}),
          tools: z.array(toolSchema).default([]),
          /** Model rounds that may end in tool calls per turn (a profile may override). */
          maxToolRounds: z.number().int().min(1).max(20).default(4),
          /** Consecutive failures of one tool that open its circuit breaker, and how long it stays open. */
          toolBreakerFailures: z.number().int().min(1).default(5),
          toolBreakerCooldownMs: z.number().int().min(1).default(30_000),
          /** Mirror this share of completed chat requests to another upstream, after the reply, for comparison. */
          shadow: z
            .object({
              upstream: z.string().min(1),
              percent: z.number().min(0).max(100).default(5),
              /** Model name sent to the shadow upstream; unset: the request's. */
              model: z.string().min(1).optional(),
            })
            .strict()
            .optional(),
        })
        .strict()
        .prefault({}),
      store: z
        .object({
          path: z.string().optional(),
          /** A PostgreSQL store shared by several daemons (docs/scale-out.md), e.g. postgres://cs@db:5432/cs; unset: SQLite at path. */
          url: z.optional(z.string().regex(/^postgres(ql)?:\/\//i, 'a postgres:// URL')),
          /** Connections to a PostgreSQL store: a few per core of its host (on 2 cores 8 served 25-40% more than 20). */
          poolSize: z.number().int().min(1).max(1000).default(10),
          synchronous: z.enum(['NORMAL', 'FULL']).default('NORMAL'),
          busyTimeoutMs: z.number().int().min(0).default(5000),
          /** WAL checkpoint interval (on a worker thread, never inside a request; sooner when the WAL passes 4 MiB). */
          checkpointIntervalMs: z.number().int().min(100).default(1000),
          /** Expired-session sweep interval. */
          sweepIntervalMs: z.number().int().min(100).default(60_000),
          /** Personal data replaced by [EMAIL], [PHONE], [CN_ID], [CARD], an extended type's or a custom [LABEL] in stored messages (docs/compliance.md). */
          redaction: z
            .object({
              enabled: z.boolean().default(true),
              email: z.boolean().default(true),
              phone: z.boolean().default(true),
              cnId: z.boolean().default(true),
              card: z.boolean().default(true),
              // The extended types (src/compliance/extended.ts; its defaultOn must agree, a test checks): all on,
              // docs/compliance.md says why for each.
              passport: z.boolean().default(true),
              plate: z.boolean().default(true),
              wechat: z.boolean().default(true),
              qq: z.boolean().default(true),
              address: z.boolean().default(true),
              name: z.boolean().default(true),
              custom: z
                .array(
                  z
                    .object({
                      label: z.string().regex(/^[A-Za-z][A-Za-z0-9_]{0,31}$/, 'letters, digits and "_", starting with a letter (1-32)'),
                      pattern: z
                        .string()
                        .min(1)
                        .refine((p) => {
                          try {
                            new RegExp(p, 'g');
                            return !new RegExp(p).test('');
                          } catch {
                            return false;
                          }
                        }, 'must be a JavaScript regular expression that does not match the empty string'),
                      flags: z
                        .string()
                        .regex(/^[imsu]*$/, 'only i, m, s and u')
                        .optional(),
                    })
                    .strict(),
                )
                .default([]),
            })
            .strict()
            .prefault({}),
          /** Images, audio and files in stored messages: a placeholder part ([IMAGE], ...), or kept as sent. Nothing can redact them. */
          attachments: z.enum(['drop', 'keep']).default('drop'),
          /** Redact the live turn sent to the engine too: never, only for remote upstreams, or always. */
          redactUpstream: z.enum(['never', 'remote', 'always']).default('never'),
          /** Encryption key for stored message contents, base64 of 32 bytes: set it as CS_LLM_STORE_KEY, not in the file. */
          key: z.string().min(1).optional(),
          encryption: z
            .object({
              /** A file holding the key (base64 of 32 bytes), e.g. from cs-llm store new-key. */
              keyFile: z.string().min(1).optional(),
            })
            .strict()
            .prefault({}),
          /** The append-only, hash-chained audit log of API requests (never message contents). */
          audit: z.boolean().default(true),
          /** How often queued audit records are written, in one transaction. */
          auditFlushMs: z.number().int().min(10).max(10_000).default(100),
          /** How often the usage and cost aggregates (tokens and money per upstream, model, tenant, key and day) are written. */
          usageFlushMs: z.number().int().min(100).max(600_000).default(10_000),
          /** Audit records older than this are pruned by the daemon (the chain stays verifiable); 0 keeps them. */
          auditRetentionDays: z.number().int().min(0).max(36_500).default(365),
          /**
           * The most audit records waiting to be written (writes failing or blocked); at it the daemon refuses API
           * requests (503 audit_unavailable) until the queue drains, instead of serving unaudited.
           */
          auditMaxQueue: z.number().int().min(1).max(10_000_000).default(10_000),
          /** The audit chain's HMAC key file (default: audit.key in the state directory), created 0600 on first use. */
          auditKeyFile: z.string().min(1).optional(),
        })
        .strict()
        .prefault({}),
      profiles: z.record(z.string(), profileSchema).default({}),
      defaultProfile: z.string().default('default'),
      /** Quotas per tenant (the tenant of the caller's API key; docs/daemon.md: quotas). A tenant not listed has none. */
      tenants: z.record(z.string().regex(TENANT_PATTERN, 'letters, digits, ".", "_" or "-" (1-64)'), tenantSchema).default({}),
      /** User additions to the model catalog, validated by src/models against the catalog schema. */
      models: z.array(z.record(z.string(), z.unknown())).default([]),
    })
    .strict();

  return { configSchema, profileSchema, toolSchema, tenantSchema, priceSchema, limitsSchema, upstreamSchema };
}

export type ConfigSchemas = ReturnType<typeof configSchemas>;
export type Config = Zod.infer<ConfigSchemas['configSchema']>;
export type Profile = Zod.infer<ConfigSchemas['profileSchema']>;
export type TenantQuotaConfig = Zod.infer<ConfigSchemas['tenantSchema']>;
export type ToolConfig = Zod.infer<ConfigSchemas['toolSchema']>;
export type ConfigInput = Zod.input<ConfigSchemas['configSchema']>;

let built: ConfigSchemas | undefined;

/** The schemas, built (and zod loaded) on the first call. */
export function zodSchemas(): ConfigSchemas {
  return (built ??= configSchemas(zod()));
}
