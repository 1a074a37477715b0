/*
 * The CPU engine's command line. Its own flags (llama.cpp's names: --ctx-size, --parallel, --threads) and
 * the vLLM names cs-llm passes to every engine (--max-model-len, --max-num-seqs, --served-model-name), so
 * the same container spec drives vllm, sim and cpu. --threads has no default on purpose: inside a
 * container os.cpus() reports the host's cores, and 2 threads under a 1-CPU quota ran 11x slower.
 */

import { basename } from 'node:path';

export interface CpuEngineOptions {
  modelPath: string;
  /** Name clients send as "model" (default: the file name without .gguf). */
  servedModelName?: string;
  host?: string;
  /** 0 picks a free port. */
  port: number;
  /** llama.cpp threads: set it to the CPUs the engine really gets. */
  threads: number;
  /** Context length per sequence (default: the model's training context). */
  ctxSize?: number;
  /** Sequences generating at once (each holds its own KV cache); more requests wait in the queue. */
  parallel?: number;
  /** Requests allowed to wait for a sequence; beyond that: 429 with Retry-After. */
  maxQueue?: number;
  /** When set, the model file's sha256 must match before it is loaded. */
  sha256?: string;
  /** Streaming: pieces generated within this many ms after the first share one SSE chunk (0: one chunk per piece). */
  streamIntervalMs?: number;
  /** On SIGTERM/SIGINT (main.ts): how long requests in flight may take to finish before they are stopped. */
  drainTimeoutMs?: number;
  /** When set, /v1/* needs `Authorization: Bearer <apiKey>`, as vLLM's --api-key (flag, else $VLLM_API_KEY). */
  apiKey?: string;
  /** Names besides loopback and the machine's hostname the Host header may carry, comma-separated (the container name). */
  engineHostname?: string;
  /** One log line at a time (default: stdout). */
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export class CpuOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CpuOptionsError';
  }
}

export const DEFAULT_MAX_QUEUE = 32;
export const DEFAULT_STREAM_INTERVAL_MS = 10;
/**
 * Under the grace cs-llm gives an engine before SIGKILL (5 s for a local process, 10 s for a container), so
 * the engine stops what is left and exits 0 on its own rather than being killed mid-drain.
 */
export const DEFAULT_DRAIN_TIMEOUT_MS = 4000;

export function defaultServedName(modelPath: string): string {
  return basename(modelPath).replace(/\.gguf$/i, '');
}

const VALUE_FLAGS: Record<string, keyof CpuEngineOptions | null> = {
  '--model': 'modelPath',
  '-m': 'modelPath',
  '--served-model-name': 'servedModelName',
  '--host': 'host',
  '--port': 'port',
  '--threads': 'threads',
  '-t': 'threads',
  '--ctx-size': 'ctxSize',
  '-c': 'ctxSize',
  '--max-model-len': 'ctxSize',
  '--parallel': 'parallel',
  '-np': 'parallel',
  '--max-num-seqs': 'parallel',
  '--max-queue': 'maxQueue',
  '--sha256': 'sha256',
  '--stream-interval-ms': 'streamIntervalMs',
  '--drain-timeout-ms': 'drainTimeoutMs',
  '--api-key': 'apiKey',
  '--engine-hostname': 'engineHostname',
  // vLLM flags the shared spec passes that mean nothing on a CPU.
  '--gpu-memory-utilization': null,
  '--tensor-parallel-size': null,
  '--tool-call-parser': null,
  '--chat-template': null,
};
const IGNORED_SWITCHES = new Set(['--enable-auto-tool-choice']);
const NUMERIC = new Set<keyof CpuEngineOptions>([
  'port',
  'threads',
  'ctxSize',
  'parallel',
  'maxQueue',
  'streamIntervalMs',
  'drainTimeoutMs',
]);

export interface ParsedCpuArgs {
  help: boolean;
  options: Omit<CpuEngineOptions, 'log' | 'env'>;
  ignored: string[];
}

/** argv (without node and the script) + env (CS_LLM_CPU_THREADS, VLLM_API_KEY, CS_LLM_ENGINE_HOSTNAME) -> options; CpuOptionsError on bad input. */
export function parseCpuArgs(argv: readonly string[], env: NodeJS.ProcessEnv = {}): ParsedCpuArgs {
  const values: Partial<Record<keyof CpuEngineOptions, string>> = {};
  const ignored: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') {
      help = true;
      continue;
    }
    if (IGNORED_SWITCHES.has(arg)) {
      ignored.push(arg);
      continue;
    }
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (!(flag in VALUE_FLAGS)) throw new CpuOptionsError(`unknown flag ${flag}`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new CpuOptionsError(`${flag} needs a value`);
    const key = VALUE_FLAGS[flag];
    if (key === null || key === undefined) ignored.push(flag);
    else values[key] = value;
  }
  if (help) return { help, options: { modelPath: '', port: 0, threads: 1 }, ignored };
  values.threads ??= env.CS_LLM_CPU_THREADS;
  // Flags win over the environment, as with vLLM (VLLM_API_KEY) and the simulator.
  values.apiKey ??= env.VLLM_API_KEY || undefined;
  values.engineHostname ??= env.CS_LLM_ENGINE_HOSTNAME || undefined;
  if (!values.modelPath) throw new CpuOptionsError('--model <path to a .gguf file> is required');
  if (values.threads === undefined) {
    throw new CpuOptionsError('--threads <n> is required (or CS_LLM_CPU_THREADS): set it to the CPUs this engine gets, never more');
  }
  const numbers: Partial<Record<keyof CpuEngineOptions, number>> = {};
  for (const key of NUMERIC) {
    const text = values[key];
    if (text === undefined) continue;
    const n = Number(text);
    const min = key === 'port' || key === 'maxQueue' || key === 'streamIntervalMs' || key === 'drainTimeoutMs' ? 0 : 1;
    if (!/^\d+$/.test(text) || n < min || (key === 'port' && n > 65535))
      throw new CpuOptionsError(`--${flagName(key)} must be a whole number of at least ${min}, got "${text}"`);
    numbers[key] = n;
  }
  if (values.sha256 !== undefined && !/^[0-9a-f]{64}$/i.test(values.sha256)) throw new CpuOptionsError('--sha256 must be 64 hex digits');
  return {
    help,
    ignored,
    options: {
      modelPath: values.modelPath,
      servedModelName: values.servedModelName,
      host: values.host,
      port: numbers.port ?? 8000,
      threads: numbers.threads!,
      ctxSize: numbers.ctxSize,
      parallel: numbers.parallel,
      maxQueue: numbers.maxQueue,
      sha256: values.sha256?.toLowerCase(),
      streamIntervalMs: numbers.streamIntervalMs,
      drainTimeoutMs: numbers.drainTimeoutMs,
      apiKey: values.apiKey || undefined,
      engineHostname: values.engineHostname || undefined,
    },
  };
}

function flagName(key: keyof CpuEngineOptions): string {
  return (
    (
      { ctxSize: 'ctx-size', maxQueue: 'max-queue', streamIntervalMs: 'stream-interval-ms', drainTimeoutMs: 'drain-timeout-ms' } as Record<
        string,
        string
      >
    )[key] ?? key
  );
}

export function cpuFlagsHelp(): string {
  return [
    '  --model, -m PATH           the GGUF model file (required)',
    '  --threads, -t N            llama.cpp threads (required; or CS_LLM_CPU_THREADS): the CPUs this engine gets',
    '  --port N                   port (default 8000; 0 picks a free one)',
    '  --host ADDR                address to bind (default 127.0.0.1)',
    "  --ctx-size, -c N           context per sequence (default: the model's; alias --max-model-len)",
    '  --parallel, -np N          sequences generating at once (default 1; alias --max-num-seqs)',
    `  --max-queue N              requests that may wait for a sequence (default ${DEFAULT_MAX_QUEUE}); beyond: 429`,
    '  --served-model-name NAME   the model name clients send (default: the file name)',
    '  --sha256 HEX               refuse to load unless the file has this sha256',
    `  --stream-interval-ms N     streaming: later pieces within N ms share a chunk (default ${DEFAULT_STREAM_INTERVAL_MS}; 0: one per piece)`,
    `  --drain-timeout-ms N       on SIGTERM/SIGINT: time requests in flight get to finish (default ${DEFAULT_DRAIN_TIMEOUT_MS}); then they get a 503`,
    '  --api-key KEY              /v1/* needs Authorization: Bearer KEY, as vLLM (or VLLM_API_KEY)',
    '  --engine-hostname NAMES    Host names (comma-separated) served besides loopback and this hostname (or CS_LLM_ENGINE_HOSTNAME)',
  ].join('\n');
}
