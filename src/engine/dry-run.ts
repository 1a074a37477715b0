/*
 * `up --dry-run`: the plan `up` would carry out, from the same planEngine, with nothing pulled or started:
 * the engines with their GPUs and ports, model, context, sequences, placement, and whether the KV cache
 * figure is vLLM's measurement or the estimate.
 */

import { engineKindInfo, type EngineKind } from './kinds.js';
import type { EnginePlan } from './plan.js';
import { containerNameFor, formatGpuSelection, instanceIdFor } from './spec.js';

export interface PlannedEngineSummary {
  /** The container name (or the local process, when Docker is not there). */
  name: string;
  gpus: string;
  gpuNames: string[];
  tensorParallel: number;
  port: number;
  baseUrl: string;
}

export interface UpPlanSummary {
  dryRun: true;
  engine: EngineKind;
  image: string;
  model: string;
  servedName: string;
  revision: string | null;
  maxModelLen: number;
  maxNumSeqs: number;
  placement: EnginePlan['placement'];
  /** measured: vLLM reported this KV cache on GPUs of this kind before; estimated: the formula. null without GPUs. */
  fit: { source: 'measured' | 'estimated'; kvCacheTokens: number; estimatedKvCacheTokens: number } | null;
  engines: PlannedEngineSummary[];
  /** The chat daemon that would front the engines; null with --no-daemon. */
  daemon: { url: string; upstreams: string[]; sticky: boolean } | null;
  notes: string[];
}

export function summarizePlan(
  plan: EnginePlan,
  options: { home: string; image?: string; daemon: { host: string; port: number } | null },
): UpPlanSummary {
  const instance = instanceIdFor(options.home);
  const engines = plan.engines.map((e, i) => ({
    name: containerNameFor(instance, plan.engines.length > 1 ? i : 0),
    gpus: formatGpuSelection(e.gpus),
    gpuNames: e.chosenGpus.map((g) => `${g.index}: ${g.name}`),
    tensorParallel: e.tensorParallel,
    port: e.port,
    baseUrl: `http://127.0.0.1:${e.port}/v1`,
  }));
  const host = options.daemon?.host.includes(':') ? `[${options.daemon.host}]` : options.daemon?.host;
  return {
    dryRun: true,
    engine: plan.kind,
    image: options.image ?? engineKindInfo(plan.kind).defaultImage,
    model: plan.model.id,
    servedName: plan.model.servedName,
    revision: plan.model.revision ?? null,
    maxModelLen: plan.maxModelLen,
    maxNumSeqs: plan.maxNumSeqs,
    placement: plan.placement,
    fit: plan.kvCache
      ? { source: plan.kvCache.source, kvCacheTokens: plan.kvCache.tokens, estimatedKvCacheTokens: plan.kvCache.estimatedTokens }
      : null,
    engines,
    daemon: options.daemon
      ? {
          url: `http://${host}:${options.daemon.port}`,
          upstreams: engines.map((e) => e.baseUrl.replace(/\/v1$/, '')),
          sticky: engines.length > 1,
        }
      : null,
    notes: plan.notes ?? [],
  };
}

/** The plan as lines for a person. */
export function planLines(summary: UpPlanSummary): string[] {
  const fit = summary.fit
    ? `; KV cache ${summary.fit.kvCacheTokens} tokens, ${summary.fit.source === 'measured' ? `measured by vLLM (the estimate says ${summary.fit.estimatedKvCacheTokens})` : 'estimated'}`
    : '';
  const lines = [
    'plan (dry run: nothing pulled or started)',
    ...summary.notes.map((n) => `note: ${n}`),
    `engine: ${summary.engine}, image ${summary.image}`,
    `model: ${summary.model}${summary.revision ? ` @ ${summary.revision.slice(0, 12)}` : ''} (context ${summary.maxModelLen}, ${summary.maxNumSeqs} sequences${fit})`,
    `placement: ${summary.placement}${summary.engines.length > 1 ? ` (${summary.engines.length} engines)` : ''}`,
  ];
  for (const e of summary.engines) {
    const gpus = e.gpuNames.length ? `GPU ${e.gpuNames.join(', GPU ')}` : 'no GPU';
    lines.push(`  ${e.name}  ${gpus}${e.tensorParallel > 1 ? ` (tensor parallel ${e.tensorParallel})` : ''}  ${e.baseUrl}`);
  }
  if (summary.daemon) {
    const n = summary.daemon.upstreams.length;
    lines.push(`chat daemon: ${summary.daemon.url} in front of ${n === 1 ? 'the engine' : `${n} engines, session-sticky`}`);
  } else lines.push('chat daemon: none (--no-daemon)');
  return lines;
}
