/*
 * What vLLM says about memory while it starts, read from its log lines and /metrics. Pure parsing, for the
 * calibration of the fit estimate (a measured KV cache per GPU, model, image and flags) and for the retry
 * with the context vLLM says fits. The formats are vLLM's own, as its source writes them:
 *
 * - vllm/v1/core/kv_cache_utils.py: `GPU KV cache size: %s tokens` and `Maximum concurrency for %s tokens per
 *   request: %.2fx`, the counts written with thousands separators (f"{n:,}"); some releases print both on
 *   one line, joined by ", "; older ones without separators.
 * - the v0 engine (vllm/worker/worker.py, executor_base.py): `# GPU blocks: %d, # CPU blocks: %d`, later
 *   `# CUDA blocks: ...` (the device type upper-cased); tokens = blocks x block size (16 unless set).
 * - vllm/v1/worker/gpu_model_runner.py: `Model loading took %.4f GiB and %.6f seconds`, later
 *   `Model loading took %s GiB memory and %.6f seconds` (the weights on one GPU; once per rank).
 * - vllm/v1/worker/gpu_worker.py: `Available KV cache memory: %s GiB`, and the start-up refusal
 *   `Free memory on device cuda:0 (15.32/22.04 GiB) on startup is less than desired GPU memory utilization
 *   (0.88, 19.39 GiB)`.
 * - vllm/v1/core/kv_cache_utils.py: the refusal `To serve at least one request with the model's max seq len
 *   (8192), (18.00 GiB KV cache is needed, ...). Based on the available memory, the estimated maximum model
 *   length is 1808.` ("models's" in some releases); the v0 engine's `The model's max seq len (4096) is
 *   larger than the maximum number of tokens that can be stored in KV cache (3664)`.
 * - /metrics: `vllm:cache_config_info{block_size="16",...,num_gpu_blocks="2184",...} 1.0`.
 */

/** vLLM's default block size on CUDA (vllm/config/cache.py), used when nothing says otherwise. */
export const DEFAULT_BLOCK_SIZE = 16;

export type VllmRefusal =
  /** The KV cache cannot hold one sequence of --max-model-len; `fits` is the longest vLLM says fits. */
  | { kind: 'context'; maxModelLen: number | null; fits: number | null; line: string }
  | { kind: 'free-memory'; freeGiB: number; totalGiB: number; utilization: number; neededGiB: number; line: string }
  | { kind: 'no-kv-memory'; line: string };

export interface VllmStartupReport {
  /** The KV cache in tokens, as vLLM counted it (or blocks x block size on the v0 engine). */
  kvCacheTokens: number | null;
  /** `Maximum concurrency for L tokens per request: Xx`. */
  maxConcurrency: { maxModelLen: number; concurrency: number } | null;
  /** GPU blocks (v0's `# GPU blocks`, or num_gpu_blocks of vllm:cache_config_info). */
  gpuBlocks: number | null;
  blockSize: number | null;
  /** The weights on one GPU, from `Model loading took X GiB`. */
  weightsGiB: number | null;
  /** `Available KV cache memory: X GiB` (per GPU). */
  availableKvGiB: number | null;
  refusal: VllmRefusal | null;
}

const count = (text: string): number => Number(text.replace(/,/g, ''));

/** Reads every line it knows; later lines win (a restarted engine prints again), refusals are kept once found. */
export function parseVllmStartup(lines: readonly string[]): VllmStartupReport {
  const report: VllmStartupReport = {
    kvCacheTokens: null,
    maxConcurrency: null,
    gpuBlocks: null,
    blockSize: null,
    weightsGiB: null,
    availableKvGiB: null,
    refusal: null,
  };
  for (const line of lines) {
    let m: RegExpExecArray | null;
    if ((m = /GPU KV cache size: ([\d,]+) tokens/.exec(line))) report.kvCacheTokens = count(m[1]!);
    if ((m = /Maximum concurrency for ([\d,]+) tokens per request: ([\d.]+)x/.exec(line)))
      report.maxConcurrency = { maxModelLen: count(m[1]!), concurrency: Number(m[2]) };
    if ((m = /# (?:GPU|CUDA) blocks: (\d+)/i.exec(line))) report.gpuBlocks = Number(m[1]);
    if ((m = /'block_size': (\d+)/.exec(line))) report.blockSize = Number(m[1]);
    if ((m = /Model loading took ([\d.]+) GiB/.exec(line))) report.weightsGiB = Number(m[1]);
    if ((m = /Available KV cache memory: ([\d.]+) GiB/.exec(line))) report.availableKvGiB = Number(m[1]);
    report.refusal ??= refusalIn(line);
  }
  if (report.kvCacheTokens === null && report.gpuBlocks !== null)
    report.kvCacheTokens = report.gpuBlocks * (report.blockSize ?? DEFAULT_BLOCK_SIZE);
  return report;
}

function refusalIn(line: string): VllmRefusal | null {
  let m: RegExpExecArray | null;
  if ((m = /To serve at least one request with the models?'s? max seq len \((\d+)\)/.exec(line))) {
    const fits = /the estimated maximum model length is (\d+)/.exec(line);
    return { kind: 'context', maxModelLen: Number(m[1]), fits: fits ? Number(fits[1]) : null, line: line.trim() };
  }
  if ((m = /max seq len \((\d+)\) is larger than the maximum number of tokens that can be stored in KV cache \((\d+)\)/.exec(line)))
    return { kind: 'context', maxModelLen: Number(m[1]), fits: Number(m[2]), line: line.trim() };
  if (
    (m =
      /Free memory on device \S+ \(([\d.]+)\/([\d.]+) GiB\) on startup is less than desired GPU memory utilization \(([\d.]+), ([\d.]+) GiB\)/.exec(
        line,
      ))
  ) {
    return {
      kind: 'free-memory',
      freeGiB: Number(m[1]),
      totalGiB: Number(m[2]),
      utilization: Number(m[3]),
      neededGiB: Number(m[4]),
      line: line.trim(),
    };
  }
  if (/No available memory for the cache blocks/.test(line)) return { kind: 'no-kv-memory', line: line.trim() };
  return null;
}

/** num_gpu_blocks and block_size from vllm:cache_config_info in a /metrics text, when vLLM exports it. */
export function parseCacheConfigInfo(metrics: string): { gpuBlocks: number | null; blockSize: number | null } | null {
  const line = metrics.split('\n').find((l) => l.startsWith('vllm:cache_config_info{'));
  if (!line) return null;
  const label = (name: string): number | null => {
    const m = new RegExp(`[{,]${name}="(\\d+)"`).exec(line);
    return m ? Number(m[1]) : null;
  };
  return { gpuBlocks: label('num_gpu_blocks'), blockSize: label('block_size') };
}
