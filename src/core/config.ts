/*
 * The one configuration of cs-llm. Sources, later wins: defaults < file ($CS_LLM_HOME/config.json) <
 * environment (CS_LLM_<SECTION>_<FIELD>, e.g. CS_LLM_DAEMON_PORT=9000) < flags. Every section is strict so a
 * misspelt field is reported instead of silently ignored.
 */

import { readFileSync } from 'node:fs';
import type { ZodError } from 'zod';
import { checkConfig, checkProfile, CONFIG_SECTIONS } from './config-check.js';
import type { Config, Profile } from './config-schema.js';
import { zodSchemas } from './config-schema.js';
import { ConfigError } from './errors.js';
import { resolvePaths, type Paths } from './paths.js';

export type { Config, ConfigInput, PriceConfig, Profile, TenantQuotaConfig, ToolConfig, UpstreamConfig } from './config-schema.js';

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
  return parts.map((p, i) => (i === 0 ? p.toLowerCase() : p.charAt(0).toUpperCase() + p.slice(1).toLowerCase())).join('');
}

/** The environment layer: CS_LLM_DAEMON_PORT=9000 -> {daemon: {port: 9000}}. Values are JSON if they parse. */
export function configFromEnv(env: NodeJS.ProcessEnv): Plain {
  const sections: readonly string[] = CONFIG_SECTIONS;
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

function describeIssues(error: ZodError, source: string): ConfigError {
  const first = error.issues[0]!;
  const field = first.path.join('.') || '(top level)';
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem(s))` : '';
  return new ConfigError(`${source}: field "${field}": ${first.message}${more}`, {
    next: `Fix "${field}" in ${source}, or run 'cs-llm config show' to see the values in force.`,
  });
}

/**
 * The config parsed from one source, or a ConfigError naming `source` and the field. The check without zod
 * first; zod (loaded then) for what it refuses, which it may accept after all.
 */
function validated(input: Plain, source: string): Config {
  const fast = checkConfig(input);
  if (fast) return fast;
  const result = zodSchemas().configSchema.safeParse(input);
  if (!result.success) throw describeIssues(result.error, source);
  return result.data;
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
  validated(parsed, file);
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
  validated(deepMerge(fromEnv), 'environment (CS_LLM_* variables)');
  const config = validated(deepMerge(fromFile ?? {}, fromEnv, options.flags ?? {}), 'flags');
  return { config, paths, file: fromFile ? file : null };
}

/** The profile by name, falling back to the defaults for 'default'. */
export function profileFor(config: Config, name?: string): Profile {
  const key = name ?? config.defaultProfile;
  // Own properties only: a name such as "constructor" is no profile.
  return (Object.hasOwn(config.profiles, key) ? config.profiles[key] : undefined) ?? checkProfile({})!;
}
