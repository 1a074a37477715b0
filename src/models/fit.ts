/*
 * The VRAM fit estimate, pure: will this model run on these GPUs, with which --max-model-len and
 * --max-num-seqs, and if not, why. It follows how vLLM spends GPU memory:
 *
 *   usable per GPU   = total VRAM x gpu-memory-utilization  (vLLM's budget for itself)
 *   static per GPU   = weights / tensor-parallel + RUNTIME_OVERHEAD_BYTES
 *   KV pool per GPU  = usable - static, in tokens = pool / KV bytes per token
 *   KV bytes/token   = layers x KV heads (per GPU) x head dim x 2 (K and V) x 2 bytes (fp16 cache)
 *
 * and what makes vLLM refuse to start: the pool must hold one sequence at the full --max-model-len ("max
 * seq len is larger than the maximum number of tokens that can be stored in KV cache"), and the free VRAM at
 * start must be at least total x utilization ("Free memory on device ... less than desired GPU memory
 * utilization"): a card that drives a display has less free than total.
 *
 * Sequences: vLLM pages the KV cache, so concurrent chats share the pool and rarely all reach the full
 * context. We plan for sequences that fill on average AVERAGE_FILL of the context; beyond that vLLM
 * preempts (slower, not broken). The proposal is the largest context step that leaves room for at least
 * COMFORTABLE_SEQUENCES such sequences, else the largest that starts at all.
 */

import type { Catalog, ModelEntry } from './schema.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;

/**
 * Activations of the largest prefill batch, CUDA graphs, the CUDA context and library workspaces, per GPU.
 * vLLM's own profile puts these at about 1-1.5 GiB for 7B-32B models (FACTS.md section 3); we take the top
 * of that range, because an estimate that is too low is the failure users complain about (OOM at start).
 */
export const RUNTIME_OVERHEAD_BYTES = 1.5 * GiB;
/** fp16/bf16 KV cache (vLLM's default kv-cache-dtype auto for AWQ models). */
export const KV_BYTES_PER_VALUE = 2;
/** The share of the context an average concurrent sequence holds in the KV cache. */
export const AVERAGE_FILL = 0.25;
/** Context lengths proposed, largest first (the model's own maximum is tried first when it is not a step). */
export const CONTEXT_STEPS = [131072, 65536, 32768, 16384, 8192, 4096, 2048] as const;
/** Below this context (or the model's maximum, if smaller) a plan is "tight". */
export const COMFORTABLE_CONTEXT = 16384;
/** Below this many concurrent sequences a plan is "tight". */
export const COMFORTABLE_SEQUENCES = 4;
/** vLLM's default --max-num-seqs; more is never proposed. */
export const MAX_NUM_SEQS = 256;
export const DEFAULT_GPU_MEMORY_UTILIZATION = 0.9;

export interface FitGpu {
  index?: number;
  name: string;
  memoryTotalMiB: number | null;
  /** Free at start; null when unknown (e.g. planning with --vram). */
  memoryFreeMiB: number | null;
  computeCapability?: string | number | null;
}

export interface FitOptions {
  gpuMemoryUtilization?: number;
  /** Ask for this --max-model-len instead of proposing one. */
  context?: number;
  /** Ask for this --max-num-seqs instead of proposing one. */
  maxNumSeqs?: number;
  /** Split across this many GPUs; default: one GPU if that fits, else the fewest equal GPUs that do. */
  tensorParallel?: number;
  /** The KV cache vLLM reported for this model on these GPUs (src/models/measurements.ts), used instead of the formula. */
  measuredKvTokens?: (model: ModelEntry, gpus: FitGpu[], tensorParallel: number) => number | null;
}

export type FitVerdict = 'fits' | 'tight' | 'no';

export interface FitResult {
  verdict: FitVerdict;
  /** Proposed (or asked) --max-model-len; null when nothing fits. */
  maxModelLen: number | null;
  /** Proposed (or asked) --max-num-seqs; null when nothing fits. */
  maxNumSeqs: number | null;
  /** Bytes the plan needs on each GPU (weights share + overhead + KV cache of the plan). */
  requiredBytes: number;
  /** Bytes vLLM may use on each GPU (total x utilization). */
  usableBytes: number;
  reason: string;
  tensorParallel: number;
  /** The GPUs the plan uses (their index, or position in the list given). */
  gpuIndexes: number[];
  /** Tokens the KV cache holds: vLLM's own figure when measured, else the estimate's. */
  kvCacheTokens: number;
  /** What the formula says, measured or not. */
  estimatedKvCacheTokens: number;
  /** kvCacheTokens comes from vLLM's start-up report on these GPUs, not from the formula. */
  measured: boolean;
  gpuMemoryUtilization: number;
}

/** KV cache bytes per token on one GPU; with tensor parallel the KV heads are split (or replicated when fewer). */
export function kvBytesPerToken(model: Pick<ModelEntry, 'layers' | 'kvHeads' | 'headDim'>, tensorParallel = 1): number {
  const headsPerGpu = Math.ceil(model.kvHeads / tensorParallel);
  return model.layers * headsPerGpu * model.headDim * 2 * KV_BYTES_PER_VALUE;
}

export function formatGiB(bytes: number): string {
  return `${(bytes / GiB).toFixed(1)} GiB`;
}

export function formatContext(tokens: number): string {
  return tokens % 1024 === 0 ? `${tokens / 1024}k` : String(tokens);
}

function tokens(n: number): string {
  // k = 1024 tokens, as context lengths are written (8k = 8192).
  if (n < 1024) return String(n);
  const k = n / 1024;
  return Number.isInteger(k) || k >= 10 ? `${Math.round(k)}k` : `${k.toFixed(1)}k`;
}

function kvRoom(poolTokens: number, context: number, seqs: number, measured: boolean): string {
  const size = measured ? `KV cache of ${tokens(poolTokens)} tokens (measured by vLLM)` : `KV cache for about ${tokens(poolTokens)} tokens`;
  return `${size}, ${sequences(seqs)} averaging ${tokens(Math.round(context * AVERAGE_FILL))}`;
}

function sequences(n: number): string {
  return `${n} sequence${n === 1 ? '' : 's'}`;
}

function gpuIndex(gpu: FitGpu, position: number): number {
  return gpu.index ?? position;
}

function where(gpus: FitGpu[], indexes: number[]): string {
  if (gpus.length === 1) return `on GPU ${indexes[0]} (${gpus[0]!.name})`;
  const names = [...new Set(gpus.map((g) => g.name))].join(' / ');
  return `per GPU on GPUs ${indexes.join(',')} (${gpus.length} x ${names}, tensor parallel ${gpus.length})`;
}

function ccNumber(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function contextCandidates(model: ModelEntry): number[] {
  const steps = CONTEXT_STEPS.filter((s) => s < model.maxContext);
  return [model.maxContext, ...steps];
}

interface Plan {
  context: number;
  seqs: number;
}

/** The largest context (with its sequences) that the pool holds, preferring one with comfortable concurrency. */
function bestPlan(model: ModelEntry, poolTokens: number, maxNumSeqs: number | undefined): Plan | null {
  const plans: Plan[] = [];
  for (const context of contextCandidates(model)) {
    const seqs = maxNumSeqs ?? Math.min(MAX_NUM_SEQS, Math.floor(poolTokens / (context * AVERAGE_FILL)));
    if (seqs >= 1 && poolTokens >= context && poolTokens >= Math.ceil(seqs * context * AVERAGE_FILL)) plans.push({ context, seqs });
  }
  return plans.find((p) => maxNumSeqs !== undefined || p.seqs >= COMFORTABLE_SEQUENCES) ?? plans[0] ?? null;
}

/** The estimate on exactly these GPUs, split tensor parallel across all of them. */
function estimateOn(model: ModelEntry, gpus: FitGpu[], indexes: number[], options: FitOptions): FitResult {
  const util = options.gpuMemoryUtilization ?? DEFAULT_GPU_MEMORY_UTILIZATION;
  const tp = gpus.length;
  const at = where(gpus, indexes);
  const base = { tensorParallel: tp, gpuIndexes: indexes, gpuMemoryUtilization: util, estimatedKvCacheTokens: 0, measured: false };
  const no = (reason: string, requiredBytes: number, usableBytes: number, kvCacheTokens = 0): FitResult => ({
    verdict: 'no',
    maxModelLen: null,
    maxNumSeqs: null,
    requiredBytes: Math.round(requiredBytes),
    usableBytes: Math.round(usableBytes),
    reason,
    kvCacheTokens,
    ...base,
  });

  const staticBytes = Math.ceil(model.weightsBytes / tp) + RUNTIME_OVERHEAD_BYTES;
  const totals = gpus.map((g) => g.memoryTotalMiB);
  if (totals.some((t) => t === null || t <= 0)) {
    return no(`the memory size ${at} is unknown; plan with --vram SIZE (e.g. --vram 24GiB)`, staticBytes, 0);
  }
  const totalMiB = Math.min(...(totals as number[]));
  const usableBytes = Math.floor(totalMiB * MiB * util);

  const slowest = Math.min(...gpus.map((g) => ccNumber(g.computeCapability) ?? Infinity));
  if (slowest < model.minComputeCapability) {
    return no(
      `${at.replace(/^(per GPU )?on /, '')} has compute capability ${slowest}; ${model.quantization.toUpperCase()} kernels need ${model.minComputeCapability} or newer`,
      staticBytes,
      usableBytes,
    );
  }
  if (tp > 1) {
    const headsSplit = model.attentionHeads % tp === 0;
    const kvSplit = model.kvHeads % tp === 0 || tp % model.kvHeads === 0;
    if (!headsSplit || !kvSplit) {
      return no(
        `${model.id} has ${model.attentionHeads} attention heads and ${model.kvHeads} KV heads, which do not split across ${tp} GPUs`,
        staticBytes,
        usableBytes,
      );
    }
  }

  for (const [i, gpu] of gpus.entries()) {
    if (gpu.memoryFreeMiB === null) continue;
    const needFree = gpu.memoryTotalMiB! * MiB * util;
    const free = gpu.memoryFreeMiB * MiB;
    if (free < needFree) {
      const lower = Math.floor((gpu.memoryFreeMiB / gpu.memoryTotalMiB!) * 100 - 1) / 100;
      return no(
        `GPU ${indexes[i]} (${gpu.name}) has ${formatGiB(free)} free at start, and vLLM refuses to start with less than ` +
          `${util} x ${formatGiB(gpu.memoryTotalMiB! * MiB)} = ${formatGiB(needFree)} free; other programs hold ` +
          `${formatGiB((gpu.memoryTotalMiB! - gpu.memoryFreeMiB) * MiB)}. Stop them, or use gpu-memory-utilization ${lower > 0.1 ? lower.toFixed(2) : 'lower'}`,
        needFree,
        usableBytes,
      );
    }
  }

  const perToken = kvBytesPerToken(model, tp);
  base.estimatedKvCacheTokens = Math.max(0, Math.floor((usableBytes - staticBytes) / perToken));
  const measuredTokens = options.measuredKvTokens?.(model, gpus, tp) ?? null;
  base.measured = measuredTokens !== null;
  const poolTokens = measuredTokens ?? base.estimatedKvCacheTokens;
  const plan = options.context === undefined ? bestPlan(model, poolTokens, options.maxNumSeqs) : null;

  if (options.context !== undefined) {
    const context = options.context;
    if (context > model.maxContext) {
      return no(
        `${model.id} supports at most ${formatContext(model.maxContext)} context; ${formatContext(context)} was asked`,
        staticBytes,
        usableBytes,
        poolTokens,
      );
    }
    const seqs = options.maxNumSeqs ?? Math.min(MAX_NUM_SEQS, Math.floor(poolTokens / (context * AVERAGE_FILL)));
    const wantSeqs = Math.max(1, options.maxNumSeqs ?? 1);
    if (poolTokens < context || seqs < 1 || poolTokens < Math.ceil(seqs * context * AVERAGE_FILL)) {
      const required = staticBytes + perToken * Math.max(context, Math.ceil(wantSeqs * context * AVERAGE_FILL));
      const fallback = bestPlan(model, poolTokens, undefined);
      const instead = fallback ? `. Fits at ${formatContext(fallback.context)} with ${sequences(fallback.seqs)}` : '';
      const asked = options.maxNumSeqs !== undefined ? ` with ${sequences(wantSeqs)}` : '';
      return no(
        `needs ${formatGiB(required)} at ${formatContext(context)} context${asked}; ${formatGiB(usableBytes)} usable ${at}${instead}`,
        required,
        usableBytes,
        poolTokens,
      );
    }
    const required = staticBytes + perToken * context;
    const tight = seqs < COMFORTABLE_SEQUENCES;
    return {
      verdict: tight ? 'tight' : 'fits',
      maxModelLen: context,
      maxNumSeqs: seqs,
      requiredBytes: Math.round(required),
      usableBytes,
      reason: `needs ${formatGiB(required)} at ${formatContext(context)} context; ${formatGiB(usableBytes)} usable ${at}: ${kvRoom(poolTokens, context, seqs, base.measured)}`,
      kvCacheTokens: poolTokens,
      ...base,
    };
  }

  if (!plan) {
    const smallest = Math.min(...contextCandidates(model));
    const required = staticBytes + perToken * smallest;
    const why =
      staticBytes >= usableBytes
        ? `weights (${formatGiB(model.weightsBytes / tp)}) and runtime (${formatGiB(RUNTIME_OVERHEAD_BYTES)}) alone need ${formatGiB(staticBytes)}`
        : `needs ${formatGiB(required)} at ${formatContext(smallest)} context`;
    return no(`${why}; ${formatGiB(usableBytes)} usable ${at}`, required, usableBytes, poolTokens);
  }

  // What vLLM needs to start at this --max-model-len: the pool must hold one full-length sequence.
  const required = staticBytes + perToken * plan.context;
  const shortContext = plan.context < Math.min(COMFORTABLE_CONTEXT, model.maxContext);
  const tight = plan.seqs < COMFORTABLE_SEQUENCES || shortContext;
  let reason = `needs ${formatGiB(required)} at ${formatContext(plan.context)} context; ${formatGiB(usableBytes)} usable ${at}: ${kvRoom(poolTokens, plan.context, plan.seqs, base.measured)}`;
  const larger = contextCandidates(model)
    .filter((c) => c > plan.context)
    .at(-1);
  if (tight && larger !== undefined)
    reason += `; ${formatContext(larger)} context would need ${formatGiB(staticBytes + perToken * larger)}`;
  return {
    verdict: tight ? 'tight' : 'fits',
    maxModelLen: plan.context,
    maxNumSeqs: plan.seqs,
    requiredBytes: Math.round(required),
    usableBytes,
    reason,
    kvCacheTokens: poolTokens,
    ...base,
  };
}

const rank: Record<FitVerdict, number> = { fits: 2, tight: 1, no: 0 };

function better(a: FitResult, b: FitResult): boolean {
  if (rank[a.verdict] !== rank[b.verdict]) return rank[a.verdict] > rank[b.verdict];
  // Between two refusals keep the one-GPU reason: it is the one a person can act on.
  if (a.verdict === 'no') return a.tensorParallel === b.tensorParallel && a.usableBytes > b.usableBytes;
  if ((a.maxModelLen ?? 0) !== (b.maxModelLen ?? 0)) return (a.maxModelLen ?? 0) > (b.maxModelLen ?? 0);
  return (a.maxNumSeqs ?? 0) > (b.maxNumSeqs ?? 0);
}

/**
 * The estimate for a model on the GPUs given. With tensorParallel, the first N GPUs are used together.
 * Without it, the best single GPU is taken when the model fits there; otherwise tensor parallel across 2, 4
 * or 8 of the largest GPUs is tried, and the better plan wins.
 */
export function estimateFit(model: ModelEntry, gpus: FitGpu[], options: FitOptions = {}): FitResult {
  const util = options.gpuMemoryUtilization ?? DEFAULT_GPU_MEMORY_UTILIZATION;
  const positioned = gpus.map((gpu, i) => ({ gpu, index: gpuIndex(gpu, i) }));
  if (positioned.length === 0) {
    return {
      verdict: 'no',
      maxModelLen: null,
      maxNumSeqs: null,
      requiredBytes: Math.round(model.weightsBytes + RUNTIME_OVERHEAD_BYTES),
      usableBytes: 0,
      reason: 'no usable NVIDIA GPU to run on (cs-llm gpu says why); plan for a card with --vram SIZE, e.g. --vram 24GiB',
      tensorParallel: 1,
      gpuIndexes: [],
      kvCacheTokens: 0,
      estimatedKvCacheTokens: 0,
      measured: false,
      gpuMemoryUtilization: util,
    };
  }
  if (options.tensorParallel !== undefined && options.tensorParallel !== 1) {
    const tp = options.tensorParallel;
    const group = positioned.slice(0, tp);
    if (group.length < tp) {
      return {
        ...estimateOn(
          model,
          group.map((p) => p.gpu),
          group.map((p) => p.index),
          options,
        ),
        verdict: 'no',
        maxModelLen: null,
        maxNumSeqs: null,
        reason: `tensor parallel ${tp} needs ${tp} GPUs; ${group.length} given`,
        tensorParallel: tp,
      };
    }
    return estimateOn(
      model,
      group.map((p) => p.gpu),
      group.map((p) => p.index),
      options,
    );
  }
  let best: FitResult | null = null;
  for (const p of positioned) {
    const result = estimateOn(model, [p.gpu], [p.index], options);
    if (best === null || better(result, best)) best = result;
  }
  if (best!.verdict === 'fits' || options.tensorParallel === 1) return best!;
  const largestFirst = [...positioned].sort((a, b) => (b.gpu.memoryTotalMiB ?? 0) - (a.gpu.memoryTotalMiB ?? 0));
  let triedTp = 1;
  for (const tp of [2, 4, 8]) {
    if (tp > largestFirst.length) break;
    triedTp = tp;
    const group = largestFirst.slice(0, tp).sort((a, b) => a.index - b.index);
    const result = estimateOn(
      model,
      group.map((p) => p.gpu),
      group.map((p) => p.index),
      options,
    );
    if (better(result, best!)) best = result;
    if (best!.verdict === 'fits') break;
  }
  if (best!.verdict === 'no' && triedTp > 1) {
    return { ...best!, reason: `${best!.reason}; split across up to ${triedTp} GPUs (tensor parallel) it does not run either` };
  }
  return best!;
}

export interface ModelFit {
  model: ModelEntry;
  fit: FitResult;
}

/** The estimate for every model the vLLM engine can serve, in catalog order. */
export function estimateCatalog(catalog: Catalog, gpus: FitGpu[], options: FitOptions = {}): ModelFit[] {
  return catalog.models.filter((m) => m.engines.includes('vllm')).map((model) => ({ model, fit: estimateFit(model, gpus, options) }));
}

/** The largest model that fits with room ("fits", not "tight"), with its plan; null when none does. */
export function recommendModel(catalog: Catalog, gpus: FitGpu[], options: FitOptions = {}): ModelFit | null {
  const fitting = estimateCatalog(catalog, gpus, options).filter((m) => m.fit.verdict === 'fits');
  if (fitting.length === 0) return null;
  return fitting.reduce((a, b) => (b.model.parameters > a.model.parameters ? b : a));
}
