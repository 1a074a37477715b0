/*
 * The simulator's GPU memory, so that its start-up lines and refusals come from its own flags the way vLLM's
 * come from the card: usable = memory x --gpu-memory-utilization, minus the weights (split by
 * --tensor-parallel-size) and a fixed runtime share, leaves the KV cache, counted in 16-token blocks.
 * Pure; the caller prints the lines. Without a simulated GPU memory size there is nothing to model: the KV
 * cache is then a fixed number of full contexts, as before.
 */

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

/** vLLM's default --block-size on CUDA (vllm/config/cache.py): the KV cache is allocated in blocks of 16 tokens. */
export const BLOCK_SIZE = 16;

/**
 * Memory vLLM holds besides the weights and the KV cache (activations of the profiling pass, CUDA graphs,
 * the CUDA context), per GPU. 0.75 GiB is what one public run of Qwen3-32B-AWQ on two RTX 4090s left once
 * weights (9.01 GiB per GPU) and the KV cache it reported (87,200 tokens) are taken from 0.85 x 24564 MiB;
 * cs-llm's own estimate keeps 1.5 GiB (docs/gpu.md), so an estimate and the simulator's "measurement" differ
 * the way they would on a real card.
 */
export const SIM_RUNTIME_BYTES = 0.75 * GiB;

export interface SimMemoryInput {
  /** Per-GPU memory; unset means no GPU is simulated. */
  gpuMemoryMiB?: number;
  /** Free per-GPU memory at start; defaults to all of it. */
  gpuFreeMiB?: number;
  gpuMemoryUtilization: number;
  tensorParallelSize: number;
  weightsBytes: number;
  /** KV bytes per token of the whole model (all layers and KV heads, fp16). */
  kvBytesPerToken: number;
  maxModelLen: number;
}

export type SimMemory =
  | { kind: 'unmodelled' }
  | {
      kind: 'fits';
      weightsBytesPerGpu: number;
      availableKvBytes: number;
      kvCacheTokens: number;
      numGpuBlocks: number;
    }
  /** vLLM refuses at start; `line` is the exception line it ends with. */
  | { kind: 'refused'; line: string; weightsBytesPerGpu: number; availableKvBytes: number | null };

export function simulateMemory(input: SimMemoryInput): SimMemory {
  if (input.gpuMemoryMiB === undefined) return { kind: 'unmodelled' };
  const tp = Math.max(1, input.tensorParallelSize);
  const total = input.gpuMemoryMiB * MiB;
  const free = (input.gpuFreeMiB ?? input.gpuMemoryMiB) * MiB;
  const budget = total * input.gpuMemoryUtilization;
  const weightsBytesPerGpu = input.weightsBytes / tp;
  if (free < budget) {
    // vllm/v1/worker/gpu_worker.py (init_device): checked before any weight is loaded.
    return {
      kind: 'refused',
      weightsBytesPerGpu,
      availableKvBytes: null,
      line:
        `ValueError: Free memory on device cuda:0 (${gib(free)}/${gib(total)} GiB) on startup is less than desired GPU memory ` +
        `utilization (${input.gpuMemoryUtilization}, ${gib(budget)} GiB). Decrease GPU memory utilization or reduce GPU memory ` +
        'used by other processes.',
    };
  }
  const availableKvBytes = budget - weightsBytesPerGpu - SIM_RUNTIME_BYTES;
  if (availableKvBytes <= 0) {
    // vllm/v1/core/kv_cache_utils.py (check_enough_kv_cache_memory).
    return {
      kind: 'refused',
      weightsBytesPerGpu,
      availableKvBytes,
      line:
        'ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing ' +
        'the engine. See https://docs.vllm.ai/en/latest/configuration/conserving_memory/ for more details.',
    };
  }
  const perTokenPerGpu = input.kvBytesPerToken / tp;
  const numGpuBlocks = Math.floor(availableKvBytes / (perTokenPerGpu * BLOCK_SIZE));
  const kvCacheTokens = numGpuBlocks * BLOCK_SIZE;
  if (kvCacheTokens < input.maxModelLen) {
    // vllm/v1/core/kv_cache_utils.py: the same words, "models's" typo included as some releases print it.
    const needed = input.maxModelLen * perTokenPerGpu;
    const estimate = kvCacheTokens > 0 ? `Based on the available memory, the estimated maximum model length is ${kvCacheTokens}. ` : '';
    return {
      kind: 'refused',
      weightsBytesPerGpu,
      availableKvBytes,
      line:
        `ValueError: To serve at least one request with the models's max seq len (${input.maxModelLen}), (${gib(needed)} GiB KV ` +
        `cache is needed, which is larger than the available KV cache memory (${gib(availableKvBytes)} GiB). ${estimate}` +
        'Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.',
    };
  }
  return { kind: 'fits', weightsBytesPerGpu, availableKvBytes, kvCacheTokens, numGpuBlocks };
}

/** vLLM's format_gib: two decimals. */
export function gib(bytes: number): string {
  return (bytes / GiB).toFixed(2);
}
