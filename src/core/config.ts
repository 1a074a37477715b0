import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { ConfigError } from './errors.js';
import { resolvePaths, type Paths } from './paths.js';

/**
 * The one configuration of cs-llm. Sources, later wins: defaults < file ($CS_LLM_HOME/config.json) <
 * environment (CS_LLM_<SECTION>_<FIELD>, e.g. CS_LLM_DAEMON_PORT=9000) < flags. Every section is strict so a
 * misspelt field is reported instead of silently ignored.
 */
const port = z.number().int().min(1).max(65535);

export const profileSchema = z
  .object({
    systemPrompt: z.string().default('You are a helpful customer service assistant.'),
    /** Turns (a user message and its reply) kept in the window sent to the model. */
    historyTurns: z.number().int().min(0).max(1000).default(10),
    /** Sliding time-to-live of a session, renewed on each turn. */
    ttlSeconds: z.number().int().min(1).default(3600),
    /** Context length used to bound the window by tokens; null: take the engine's. */
    contextTokens: z.number().int().min(64).nullable().default(null),
  })
  .strict();

export const configSchema = z
  .object({
    engine: z
      .object({
        kind: z.enum(['auto', 'vllm', 'cpu', 'sim']).default('auto'),
        model: z.string().min(1).optional(),
        image: z.string().min(1).optional(),
        port: port.default(8000),
        /** "all", "none" or indexes ("0,1"); unset: the engine's default (all for vllm, none for sim). */
        gpus: z.string().optional(),
        context: z.number().int().min(256).optional(),
        gpuMemoryUtilization: z.number().gt(0.1).max(0.99).default(0.9),
        pullPolicy: z.enum(['if-missing', 'always', 'never']).default('if-missing'),
        hfCacheDir: z.string().optional(),
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
        bodyLimitBytes: z.number().int().min(1024).default(1024 * 1024),
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
      })
      .strict()
      .prefault({}),
    store: z
      .object({
        path: z.string().optional(),
        synchronous: z.enum(['NORMAL', 'FULL']).default('NORMAL'),
        busyTimeoutMs: z.number().int().min(0).default(5000),
        /** WAL checkpoint interval (on a worker thread, never inside a request; sooner when the WAL passes 4 MiB). */
        checkpointIntervalMs: z.number().int().min(100).default(1000),
        /** Expired-session sweep interval. */
        sweepIntervalMs: z.number().int().min(100).default(60_000),
      })
      .strict()
      .prefault({}),
    profiles: z.record(z.string(), profileSchema).default({}),
    defaultProfile: z.string().default('default'),
    /** User additions to the model catalog, validated by src/models against the catalog schema. */
    models: z.array(z.record(z.string(), z.unknown())).default([]),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type Profile = z.infer<typeof profileSchema>;
export type ConfigInput = z.input<typeof configSchema>;

export interface LoadedConfig {
  config: Config;
  paths: Paths;
  /** The file that was read, or null when none exists. */
  file: string | null;
}

type Plain = Record<string, unknown>;

function isPlainObject(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Later objects win; arrays and scalars are replaced, objects merged. */
export function deepMerge(...layers: Plain[]): Plain {
  const out: Plain = {};
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer)) {
      if (value === undefined) continue;
      const prev = out[key];
      out[key] = isPlainObject(prev) && isPlainObject(value) ? deepMerge(prev, value) : value;
    }
  }
  return out;
}

function camel(parts: string[]): string {
  return parts
    .map((p, i) => (i === 0 ? p.toLowerCase() : p.charAt(0).toUpperCase() + p.slice(1).toLowerCase()))
    .join('');
}

/** The environment layer: CS_LLM_DAEMON_PORT=9000 -> {daemon: {port: 9000}}. Values are JSON if they parse. */
export function configFromEnv(env: NodeJS.ProcessEnv): Plain {
  const sections = Object.keys(configSchema.shape);
  const out: Plain = {};
  for (const [name, raw] of Object.entries(env)) {
    if (!name.startsWith('CS_LLM_') || raw === undefined || name === 'CS_LLM_HOME') continue;
    const parts = name.slice('CS_LLM_'.length).split('_');
    const section = parts[0]!.toLowerCase();
    if (!sections.includes(section) || parts.length < 2) continue;
    let value: unknown = raw;
    try {
      value = JSON.parse(raw);
    } catch {
      // a plain string such as a URL or a host name
    }
    const field = camel(parts.slice(1));
    out[section] = { ...((out[section] as Plain | undefined) ?? {}), [field]: value };
  }
  return out;
}

function describeIssues(error: z.ZodError, source: string): ConfigError {
  const first = error.issues[0]!;
  const field = first.path.join('.') || '(top level)';
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  return new ConfigError(`${source}: field "${field}": ${first.message}${more}`, {
    next: `Fix "${field}" in ${source}, or run 'cs-llm config show' to see the values in force.`,
  });
}

function readConfigFile(file: string): Plain | null {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`cannot read config file ${file}: ${(err as Error).message}`, {
      next: 'Check the file permissions, or set CS_LLM_HOME to another directory.',
      cause: err,
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${file} is not valid JSON: ${(err as Error).message}`, {
      next: `Fix the JSON syntax in ${file} (or move it away to start from defaults).`,
      cause: err,
    });
  }
  if (!isPlainObject(parsed)) {
    throw new ConfigError(`config file ${file} must hold a JSON object`, { next: `Write {"daemon": {...}} style JSON to ${file}.` });
  }
  // Validate the file on its own so an error names the file, not a merged source.
  const check = configSchema.safeParse(parsed);
  if (!check.success) throw describeIssues(check.error, file);
  return parsed;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Flag values, already shaped like the config (undefined values are ignored). */
  flags?: Plain;
  /** Read this file instead of $CS_LLM_HOME/config.json. */
  file?: string;
}

export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const paths = resolvePaths(env);
  const file = options.file ?? paths.configFile;
  const fromFile = readConfigFile(file);
  const fromEnv = configFromEnv(env);
  const envCheck = configSchema.safeParse(deepMerge(fromEnv));
  if (!envCheck.success) throw describeIssues(envCheck.error, 'environment (CS_LLM_* variables)');
  const merged = deepMerge(fromFile ?? {}, fromEnv, options.flags ?? {});
  const result = configSchema.safeParse(merged);
  if (!result.success) throw describeIssues(result.error, 'flags');
  return { config: result.data, paths, file: fromFile ? file : null };
}

/** The profile by name, falling back to the defaults for 'default'. */
export function profileFor(config: Config, name?: string): Profile {
  const key = name ?? config.defaultProfile;
  return config.profiles[key] ?? profileSchema.parse({});
}
