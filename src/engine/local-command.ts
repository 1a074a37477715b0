import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnvironmentError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/version.js';
import { simulatorMemoryEnv, type EngineSpecInput } from './spec.js';

// How the simulator and the CPU engine run as local processes (hosts without Docker): their command line from
// this install, and the environment they get.

/** How to run the CPU engine from this install as a local process: dist, or the source through tsx in a checkout. */
export function cpuEngineCommand(): string[] {
  const dist = join(PACKAGE_ROOT, 'dist', 'cpu', 'main.js');
  const source = join(PACKAGE_ROOT, 'src', 'cpu', 'main.ts');
  const runningFromSource = fileURLToPath(import.meta.url).endsWith('.ts');
  if (runningFromSource && existsSync(source)) return [process.execPath, '--import', 'tsx', source];
  if (existsSync(dist)) return [process.execPath, dist];
  if (existsSync(source)) return [process.execPath, '--import', 'tsx', source];
  throw new EnvironmentError('the cpu engine is not part of this install (no dist/cpu/main.js)', {
    next: 'Run npm run build in the cs-llm checkout, or reinstall cs-llm.',
  });
}

/** How to run the simulator from this install: the built dist, or the source through tsx in a checkout. */
export function simulatorCommand(): string[] {
  const dist = join(PACKAGE_ROOT, 'dist', 'sim', 'main.js');
  const source = join(PACKAGE_ROOT, 'src', 'sim', 'main.ts');
  const runningFromSource = fileURLToPath(import.meta.url).endsWith('.ts');
  if (runningFromSource && existsSync(source)) return [process.execPath, '--import', 'tsx', source];
  if (existsSync(dist)) return [process.execPath, dist];
  if (existsSync(source)) return [process.execPath, '--import', 'tsx', source];
  throw new EnvironmentError('the simulator is not part of this install (no dist/sim/main.js)', {
    next: 'Run npm run build in the cs-llm checkout, or reinstall cs-llm.',
  });
}

/**
 * The environment a local engine process gets: what node, the locale and the CPU engine's runtime need, and
 * nothing else of `up`'s own (which may hold CS_LLM_STORE_KEY, upstream API keys, HF_TOKEN or cloud
 * credentials), then the --engine-env variables and, last, the engine's key.
 */
export const LOCAL_ENGINE_ENV_KEEP = ['PATH', 'HOME', 'TMPDIR', 'TZ', 'LANG', 'LANGUAGE', 'DEBUG', 'CS_LLM_CPU_RUNTIME_DIR'];

export function localEngineEnv(
  from: NodeJS.ProcessEnv,
  input: Pick<EngineSpecInput, 'extraEnv' | 'offline'> & Partial<Pick<EngineSpecInput, 'kind' | 'simulated'>>,
  apiKey?: string,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(from)) {
    if (value !== undefined && (LOCAL_ENGINE_ENV_KEEP.includes(name) || name.startsWith('LC_'))) env[name] = value;
  }
  // The simulator's memory knobs, as a container gets them; --engine-env after them wins.
  if (input.kind === 'sim' && input.simulated) {
    for (const pair of simulatorMemoryEnv(input.simulated)) env[pair.slice(0, pair.indexOf('='))] = pair.slice(pair.indexOf('=') + 1);
  }
  Object.assign(env, input.extraEnv);
  if (input.offline) Object.assign(env, { HF_HUB_OFFLINE: '1', TRANSFORMERS_OFFLINE: '1' });
  // Last: the key is up's to give (the daemon holds the same one), never shadowed by --engine-env.
  if (apiKey) env.VLLM_API_KEY = apiKey;
  return env;
}
