/*
 * The simulator's options and the one argv parser shared by `node dist/sim/main.js` and `cs-llm sim`.
 * It accepts vLLM's command line (so one container spec serves both engines) and ignores vLLM flags the
 * simulator has no use for. Node built-ins only: the simulator image carries no node_modules.
 */

export interface SimulatorOptions {
  /** Interface to bind. Default 127.0.0.1; a container passes --host 0.0.0.0. */
  host?: string;
  /** TCP port; 0 picks a free one. Default 8000. */
  port?: number;
  /** The model id as vLLM gets it (--model). Only echoed in logs and used as the default served name. */
  model?: string;
  /** Names the API answers to (--served-model-name, several allowed). Default: [model] or ["cs-llm-sim"]. */
  servedModelNames?: string[];
  /** Context window in tokens: prompt + max_tokens above it is a 400, like vLLM. Default 8192. */
  maxModelLen?: number;
  /** Sequences generated at once; more requests wait in a FIFO queue. Default 256 (vLLM's default). */
  maxNumSeqs?: number;
  /** vLLM's --gpu-memory-utilization: the share of the simulated GPU memory the engine may use. Default 0.9. */
  gpuMemoryUtilization?: number;
  /** vLLM's --tensor-parallel-size: weights and KV cache are split over this many simulated GPUs. Default 1. */
  tensorParallelSize?: number;
  /** Simulated memory per GPU in MiB (as nvidia-smi says it). Unset: no GPU memory is simulated. */
  gpuMemoryMiB?: number;
  /** Simulated free memory per GPU at start in MiB (another process holds the rest). Default: all of it. */
  gpuFreeMiB?: number;
  /** Bytes of the model's weights (all GPUs together). Default 0. */
  weightsBytes?: number;
  /** KV cache bytes per token of the whole model (layers x KV heads x head dim x 2 x 2). Default 131072. */
  kvBytesPerToken?: number;
  /** When set, /v1/* needs `Authorization: Bearer <apiKey>`, like vLLM's --api-key. */
  apiKey?: string;
  /** Names besides loopback and the machine's hostname that the Host header may carry, comma-separated (the container name). */
  engineHostname?: string;
  /** /health answers 503 (and the API 503) until this many ms after start. Default 0. */
  loadTimeMs?: number;
  /** Delay before the first token of each request, once it holds a sequence slot. Default 0. */
  ttftMs?: number;
  /** Pace of generated tokens after the first; 0 = no delay. Default 0. */
  tokensPerSecond?: number;
  /** Share (0..1) of completion requests answered 429 with Retry-After: 1. */
  fail429Rate?: number;
  /** Share (0..1) of completion requests answered 503 with Retry-After: 1. */
  fail503Rate?: number;
  /** Share (0..1) of completion requests answered 500. */
  fail500Rate?: number;
  /** Share (0..1) of completion requests accepted and never answered. */
  hangRate?: number;
  /** Share (0..1) of completion requests whose connection is destroyed part-way through the reply. */
  dieMidStreamRate?: number;
  /** When set, start-up prints this line (after vLLM-like preamble lines) and fails: main exits 1. */
  crashAtStart?: string;
  /** A provider's limits (src/sim/limits.ts): requests and tokens per window; 0 = none. Over them: 429 + Retry-After. */
  rpmLimit?: number;
  tpmLimit?: number;
  /** The window those limits count over. Default 60000 (a minute); shorter compresses time in tests. */
  limitWindowMs?: number;
  /** Seed of the PRNG that decides which requests get a fault. Default 1. */
  seed?: number;
  /** Print uvicorn-style access lines through `log`. Default true; --disable-uvicorn-access-log turns it off. */
  accessLog?: boolean;
  /** Where vLLM-like log lines go (stdout of main.ts / the CLI). Default: nowhere. */
  log?: (line: string) => void;
}

export class SimOptionsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SimOptionsError';
  }
}

type Kind = 'string' | 'int' | 'rate' | 'number' | 'strings';

interface KnobSpec {
  flag: string;
  env?: string;
  key: keyof SimulatorOptions;
  kind: Kind;
  help: string;
}

/** Flags that mean something to the simulator, in help order. */
export const KNOBS: readonly KnobSpec[] = [
  { flag: 'host', key: 'host', kind: 'string', help: 'interface to bind (default 127.0.0.1)' },
  { flag: 'port', key: 'port', kind: 'int', help: 'port to listen on, 0 = any free port (default 8000)' },
  { flag: 'model', key: 'model', kind: 'string', help: 'model id, as vLLM takes it (only named in logs and the default served name)' },
  {
    flag: 'served-model-name',
    key: 'servedModelNames',
    kind: 'strings',
    help: 'name(s) the API answers to (default: the model id, or cs-llm-sim)',
  },
  { flag: 'max-model-len', key: 'maxModelLen', kind: 'int', help: 'context window in tokens (default 8192)' },
  { flag: 'max-num-seqs', key: 'maxNumSeqs', kind: 'int', help: 'sequences generated at once; the rest wait (default 256)' },
  {
    flag: 'gpu-memory-utilization',
    key: 'gpuMemoryUtilization',
    kind: 'rate',
    help: 'share of the simulated GPU memory the engine may use (default 0.9)',
  },
  {
    flag: 'tensor-parallel-size',
    key: 'tensorParallelSize',
    kind: 'int',
    help: 'simulated GPUs the weights and KV cache are split over (default 1)',
  },
  {
    flag: 'gpu-memory-mib',
    env: 'SIM_GPU_MEMORY_MIB',
    key: 'gpuMemoryMiB',
    kind: 'int',
    help: 'simulated memory per GPU in MiB; the KV cache and start-up refusals follow from it (default: none simulated)',
  },
  {
    flag: 'gpu-free-mib',
    env: 'SIM_GPU_FREE_MIB',
    key: 'gpuFreeMiB',
    kind: 'int',
    help: 'simulated free memory per GPU at start in MiB (default: all of it)',
  },
  { flag: 'weights-bytes', env: 'SIM_WEIGHTS_BYTES', key: 'weightsBytes', kind: 'int', help: "the model's weights in bytes (default 0)" },
  {
    flag: 'kv-bytes-per-token',
    env: 'SIM_KV_BYTES_PER_TOKEN',
    key: 'kvBytesPerToken',
    kind: 'int',
    help: 'KV cache bytes per token of the whole model (default 131072)',
  },
  { flag: 'api-key', env: 'VLLM_API_KEY', key: 'apiKey', kind: 'string', help: 'require Authorization: Bearer KEY on /v1/*' },
  {
    flag: 'engine-hostname',
    env: 'CS_LLM_ENGINE_HOSTNAME',
    key: 'engineHostname',
    kind: 'string',
    help: 'names (comma-separated) the Host header may carry besides loopback and this hostname',
  },
  {
    flag: 'load-time-ms',
    env: 'SIM_LOAD_TIME_MS',
    key: 'loadTimeMs',
    kind: 'int',
    help: '/health answers 503 for this long after start (default 0)',
  },
  { flag: 'ttft-ms', env: 'SIM_TTFT_MS', key: 'ttftMs', kind: 'int', help: 'time to first token per request (default 0)' },
  {
    flag: 'tokens-per-second',
    env: 'SIM_TOKENS_PER_SECOND',
    key: 'tokensPerSecond',
    kind: 'number',
    help: 'generation pace, 0 = no delay (default 0)',
  },
  {
    flag: 'fail-429-rate',
    env: 'SIM_FAIL_429_RATE',
    key: 'fail429Rate',
    kind: 'rate',
    help: 'share of requests answered 429 + Retry-After (0..1)',
  },
  {
    flag: 'fail-503-rate',
    env: 'SIM_FAIL_503_RATE',
    key: 'fail503Rate',
    kind: 'rate',
    help: 'share of requests answered 503 + Retry-After (0..1)',
  },
  { flag: 'fail-500-rate', env: 'SIM_FAIL_500_RATE', key: 'fail500Rate', kind: 'rate', help: 'share of requests answered 500 (0..1)' },
  { flag: 'hang-rate', env: 'SIM_HANG_RATE', key: 'hangRate', kind: 'rate', help: 'share of requests accepted and never answered (0..1)' },
  {
    flag: 'die-mid-stream-rate',
    env: 'SIM_DIE_MID_STREAM_RATE',
    key: 'dieMidStreamRate',
    kind: 'rate',
    help: 'share of requests whose connection drops mid-reply (0..1)',
  },
  {
    flag: 'crash-at-start',
    env: 'SIM_CRASH_AT_START',
    key: 'crashAtStart',
    kind: 'string',
    help: 'print this log line at start-up and exit 1 (e.g. a CUDA OOM line)',
  },
  { flag: 'rpm-limit', env: 'SIM_RPM_LIMIT', key: 'rpmLimit', kind: 'int', help: 'requests per window, then 429 + Retry-After (0 = none)' },
  { flag: 'tpm-limit', env: 'SIM_TPM_LIMIT', key: 'tpmLimit', kind: 'int', help: 'prompt + reply tokens per window, then 429 (0 = none)' },
  {
    flag: 'limit-window-ms',
    env: 'SIM_LIMIT_WINDOW_MS',
    key: 'limitWindowMs',
    kind: 'int',
    help: 'the sliding window the limits count over (default 60000)',
  },
  { flag: 'seed', env: 'SIM_SEED', key: 'seed', kind: 'int', help: 'seed of the fault PRNG (default 1)' },
];

/**
 * vLLM flags that take no value. Any other unknown `--flag` swallows the next token when that token is not
 * itself a flag, so `--dtype half` and `--enforce-eager` both pass through without a list of every vLLM flag.
 */
const VALUELESS_FLAGS = new Set([
  'enable-auto-tool-choice',
  'trust-remote-code',
  'enforce-eager',
  'disable-log-requests',
  'disable-log-stats',
  'enable-log-requests',
  'enable-prefix-caching',
  'enable-chunked-prefill',
  'disable-custom-all-reduce',
  'disable-frontend-multiprocessing',
  'enable-lora',
  'enable-prompt-tokens-details',
  'enable-server-load-tracking',
  'enable-force-include-usage',
  'enable-request-id-headers',
  'enable-reasoning',
  'use-v2-block-manager',
  'disable-fastapi-docs',
  'headless',
  'help',
  'version',
]);

export interface ParsedSimArgs {
  options: SimulatorOptions;
  /** Flags accepted for vLLM compatibility and ignored (for a log line, and for tests). */
  ignored: string[];
  help: boolean;
}

/**
 * Parse vLLM-style argv (without node and script) plus SIM_* environment variables. Flags win over the
 * environment. Throws SimOptionsError with the offending flag named.
 */
export function parseSimulatorArgs(argv: readonly string[], env: Record<string, string | undefined> = {}): ParsedSimArgs {
  const options: SimulatorOptions = {};
  const ignored: string[] = [];
  let help = false;

  for (const knob of KNOBS) {
    const raw = knob.env ? env[knob.env] : undefined;
    if (raw !== undefined && raw !== '') assign(options, knob, [raw], `${knob.env}`);
  }

  const bySpec = new Map(KNOBS.map((k) => [k.flag, k]));
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (!token.startsWith('--')) {
      // `vllm serve MODEL` puts the model first, as a positional.
      if (options.model === undefined) options.model = token;
      else ignored.push(token);
      continue;
    }
    const eq = token.indexOf('=');
    const name = (eq >= 0 ? token.slice(2, eq) : token.slice(2)).replace(/_/g, '-');
    const inline = eq >= 0 ? token.slice(eq + 1) : undefined;
    const spec = bySpec.get(name);

    if (name === 'help' || name === 'h') {
      help = true;
      continue;
    }
    if (name === 'disable-uvicorn-access-log') {
      options.accessLog = false;
      continue;
    }
    if (!spec) {
      ignored.push(`--${name}`);
      if (inline === undefined && !VALUELESS_FLAGS.has(name) && !name.startsWith('no-')) {
        const next = argv[i + 1];
        if (next !== undefined && !next.startsWith('--')) i++;
      }
      continue;
    }
    const values: string[] = [];
    if (inline !== undefined) values.push(inline);
    else if (spec.kind === 'strings') {
      while (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('--')) values.push(argv[++i]!);
    } else if (argv[i + 1] !== undefined) values.push(argv[++i]!);
    if (values.length === 0) throw new SimOptionsError(`--${spec.flag} needs a value`);
    assign(options, spec, values, `--${spec.flag}`);
  }
  return { options, ignored, help };
}

function assign(options: SimulatorOptions, spec: KnobSpec, values: string[], source: string): void {
  const raw = values[0]!;
  const target = options as Record<string, unknown>;
  switch (spec.kind) {
    case 'string':
      target[spec.key] = raw;
      return;
    case 'strings':
      target[spec.key] = values;
      return;
    case 'int': {
      const n = Number(raw);
      if (!Number.isInteger(n) || n < 0) throw new SimOptionsError(`${source} must be a whole number >= 0, got "${raw}"`);
      target[spec.key] = n;
      return;
    }
    case 'number': {
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0) throw new SimOptionsError(`${source} must be a number >= 0, got "${raw}"`);
      target[spec.key] = n;
      return;
    }
    case 'rate': {
      const n = Number(raw);
      if (!Number.isFinite(n) || n < 0 || n > 1) throw new SimOptionsError(`${source} must be a share between 0 and 1, got "${raw}"`);
      target[spec.key] = n;
      return;
    }
  }
}

/** Every option with its default filled in; what the server runs on. */
export interface ResolvedSimulatorOptions extends Required<
  Omit<SimulatorOptions, 'apiKey' | 'engineHostname' | 'crashAtStart' | 'log' | 'gpuMemoryMiB' | 'gpuFreeMiB'>
> {
  gpuMemoryMiB: number | undefined;
  gpuFreeMiB: number | undefined;
  apiKey: string | undefined;
  engineHostname: string | undefined;
  crashAtStart: string | undefined;
  log: (line: string) => void;
}

export function resolveSimulatorOptions(options: SimulatorOptions): ResolvedSimulatorOptions {
  const servedModelNames = options.servedModelNames?.length ? options.servedModelNames : [options.model ?? 'cs-llm-sim'];
  const resolved: ResolvedSimulatorOptions = {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8000,
    model: options.model ?? servedModelNames[0]!,
    servedModelNames,
    maxModelLen: options.maxModelLen ?? 8192,
    maxNumSeqs: options.maxNumSeqs ?? 256,
    gpuMemoryUtilization: options.gpuMemoryUtilization ?? 0.9,
    tensorParallelSize: options.tensorParallelSize ?? 1,
    gpuMemoryMiB: options.gpuMemoryMiB || undefined,
    gpuFreeMiB: options.gpuFreeMiB,
    weightsBytes: options.weightsBytes ?? 0,
    kvBytesPerToken: options.kvBytesPerToken ?? 131072,
    apiKey: options.apiKey || undefined,
    engineHostname: options.engineHostname || undefined,
    loadTimeMs: options.loadTimeMs ?? 0,
    ttftMs: options.ttftMs ?? 0,
    tokensPerSecond: options.tokensPerSecond ?? 0,
    fail429Rate: options.fail429Rate ?? 0,
    fail503Rate: options.fail503Rate ?? 0,
    fail500Rate: options.fail500Rate ?? 0,
    hangRate: options.hangRate ?? 0,
    dieMidStreamRate: options.dieMidStreamRate ?? 0,
    crashAtStart: options.crashAtStart || undefined,
    rpmLimit: options.rpmLimit ?? 0,
    tpmLimit: options.tpmLimit ?? 0,
    limitWindowMs: options.limitWindowMs ?? 60_000,
    seed: options.seed ?? 1,
    accessLog: options.accessLog ?? true,
    log: options.log ?? (() => {}),
  };
  if (resolved.maxNumSeqs < 1) throw new SimOptionsError(`max-num-seqs must be at least 1, got ${resolved.maxNumSeqs}`);
  if (resolved.maxModelLen < 1) throw new SimOptionsError(`max-model-len must be at least 1, got ${resolved.maxModelLen}`);
  if (!(resolved.gpuMemoryUtilization > 0))
    throw new SimOptionsError(`gpu-memory-utilization must be above 0, got ${resolved.gpuMemoryUtilization}`);
  if (resolved.tensorParallelSize < 1)
    throw new SimOptionsError(`tensor-parallel-size must be at least 1, got ${resolved.tensorParallelSize}`);
  if (resolved.kvBytesPerToken < 1) throw new SimOptionsError(`kv-bytes-per-token must be at least 1, got ${resolved.kvBytesPerToken}`);
  if (resolved.limitWindowMs < 1) throw new SimOptionsError(`limit-window-ms must be at least 1, got ${resolved.limitWindowMs}`);
  if (resolved.port > 65535) throw new SimOptionsError(`port must be 0..65535, got ${resolved.port}`);
  for (const key of ['fail429Rate', 'fail503Rate', 'fail500Rate', 'hangRate', 'dieMidStreamRate'] as const) {
    const rate = resolved[key];
    if (!(rate >= 0 && rate <= 1)) throw new SimOptionsError(`${key} must be a share between 0 and 1, got ${rate}`);
  }
  return resolved;
}

/** The flag list for --help, generated from KNOBS so it never drifts. */
export function simulatorFlagsHelp(): string {
  const rows = KNOBS.map((k) => {
    const flag = `--${k.flag}${k.kind === 'strings' ? ' NAME...' : ' VALUE'}`;
    return `  ${flag.padEnd(32)}${k.help}${k.env ? ` [env ${k.env}]` : ''}`;
  });
  rows.push(`  ${'--disable-uvicorn-access-log'.padEnd(32)}no access line per request`);
  return ['Simulator flags (other vLLM flags are accepted and ignored):', ...rows].join('\n');
}
