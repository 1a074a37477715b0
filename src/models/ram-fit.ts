/*
 * The RAM fit estimate for the CPU engine (llama.cpp), pure: will this GGUF model run in this machine's
 * free memory, with which context and how many sequences, and if not, why. llama.cpp spends RAM on
 *
 *   weights          = the GGUF file (mapped; the pages count once read)
 *   KV cache         = layers x KV heads x head dim x 2 (K and V) x 2 bytes (f16 cache) per token,
 *                      x context x sequences (allocated whole at start)
 *   runtime          = node + llama.cpp + compute buffers: RUNTIME_BYTES + RUNTIME_SHARE of the weights
 *
 * against the memory the kernel says is available (MemAvailable, which counts reclaimable page cache).
 * "tight" when the plan needs more than COMFORTABLE_SHARE of it: other processes and the page cache of the
 * weights compete for the rest.
 */

import type { FitVerdict } from './fit.js';
import type { Catalog, ModelEntry } from './schema.js';

const MiB = 1024 ** 2;

/** Seen here: the engine with the tiny models has an RSS of about 110-120 MB; rounded up. */
export const RUNTIME_BYTES = 160 * MiB;
/** Compute buffers and scratch grow with the model; llama.cpp's own figures are a few percent. */
export const RUNTIME_SHARE = 0.1;
export const CPU_KV_BYTES_PER_VALUE = 2;
export const COMFORTABLE_SHARE = 0.8;
/** Contexts proposed, largest first, capped at the model's own maximum. */
export const CPU_CONTEXT_STEPS = [32768, 16384, 8192, 4096, 2048, 1024, 512] as const;
/** On a CPU one sequence at a time is the sensible default: they share the same cores. */
export const DEFAULT_CPU_SEQUENCES = 1;

export interface RamInfo {
  totalBytes: number;
  /** What the kernel says can be used without swapping (MemAvailable). */
  availableBytes: number;
}

export interface RamFitOptions {
  context?: number;
  sequences?: number;
}

export interface RamFitResult {
  verdict: FitVerdict;
  maxModelLen: number | null;
  maxNumSeqs: number | null;
  requiredBytes: number;
  usableBytes: number;
  reason: string;
  kvCacheTokens: number;
}

export function cpuKvBytesPerToken(model: Pick<ModelEntry, 'layers' | 'kvHeads' | 'headDim'>): number {
  return model.layers * model.kvHeads * model.headDim * 2 * CPU_KV_BYTES_PER_VALUE;
}

export function ramRequiredBytes(model: ModelEntry, context: number, sequences: number): number {
  return Math.ceil(model.weightsBytes * (1 + RUNTIME_SHARE) + RUNTIME_BYTES + cpuKvBytesPerToken(model) * context * sequences);
}

function size(bytes: number): string {
  return bytes >= 1024 ** 3 ? `${(bytes / 1024 ** 3).toFixed(1)} GiB` : `${Math.round(bytes / MiB)} MiB`;
}

export function estimateRamFit(model: ModelEntry, ram: RamInfo, options: RamFitOptions = {}): RamFitResult {
  const sequences = options.sequences ?? DEFAULT_CPU_SEQUENCES;
  const usable = ram.availableBytes;
  const plan = (context: number) => ({ context, required: ramRequiredBytes(model, context, sequences) });
  const result = (
    verdict: FitVerdict,
    p: { context: number; required: number } | null,
    reason: string,
    required = p?.required ?? 0,
  ): RamFitResult => ({
    verdict,
    maxModelLen: p ? p.context : null,
    maxNumSeqs: p ? sequences : null,
    requiredBytes: required,
    usableBytes: usable,
    reason,
    kvCacheTokens: p ? p.context * sequences : 0,
  });
  const describe = (p: { context: number; required: number }) =>
    `needs ${size(p.required)} (weights ${size(model.weightsBytes)} + KV cache ${size(cpuKvBytesPerToken(model) * p.context * sequences)} for ${p.context} tokens x ${sequences} sequence(s) + runtime) of ${size(usable)} available RAM`;

  if (options.context !== undefined) {
    if (options.context > model.maxContext) {
      return result(
        'no',
        null,
        `context ${options.context} is larger than the model's context length ${model.maxContext}`,
        ramRequiredBytes(model, options.context, sequences),
      );
    }
    const p = plan(options.context);
    if (p.required > usable) return result('no', null, `does not fit: ${describe(p)}`, p.required);
    return p.required > usable * COMFORTABLE_SHARE ? result('tight', p, `tight: ${describe(p)}`) : result('fits', p, describe(p));
  }
  const steps = [model.maxContext, ...CPU_CONTEXT_STEPS.filter((c) => c < model.maxContext)];
  const comfortable = steps.map(plan).find((p) => p.required <= usable * COMFORTABLE_SHARE);
  if (comfortable) return result('fits', comfortable, describe(comfortable));
  const starts = steps.map(plan).find((p) => p.required <= usable);
  if (starts) return result('tight', starts, `tight: ${describe(starts)}`);
  const smallest = plan(steps[steps.length - 1]!);
  return result('no', null, `does not fit: ${describe(smallest)}; free memory or pick a smaller model`, smallest.required);
}

export interface RamModelFit {
  model: ModelEntry;
  fit: RamFitResult;
}

/** Every model the CPU engine can serve, in catalog order. */
export function estimateRamCatalog(catalog: Catalog, ram: RamInfo, options: RamFitOptions = {}): RamModelFit[] {
  return catalog.models.filter((m) => m.engines.includes('cpu')).map((model) => ({ model, fit: estimateRamFit(model, ram, options) }));
}

/** Pure: MemTotal and MemAvailable from /proc/meminfo text (kB), or null when they are not there. */
export function parseMeminfo(text: string): RamInfo | null {
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+)\\s*kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const total = field('MemTotal');
  const available = field('MemAvailable') ?? field('MemFree');
  return total === null || available === null ? null : { totalBytes: total, availableBytes: available };
}
