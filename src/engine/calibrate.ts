/*
 * After an engine starts (or refuses for lack of KV cache), what it said about memory is recorded for the
 * next plan: its start-up lines and /metrics, parsed (vllm-report.ts), keyed by GPU name and memory, model,
 * image digest and flags (src/models/measurements.ts). Only engines on GPUs are recorded: a KV cache
 * without a GPU to key it by tells nothing about any card.
 */

import { readFileSync } from 'node:fs';
import type Docker from 'dockerode';
import { createLogger } from '../core/log.js';
import type { GpuInfo } from '../gpu/parse.js';
import { estimateError, recordMeasurement, type Measurement } from '../models/measurements.js';
import type { EnginePlan } from './plan.js';
import { parseCacheConfigInfo, parseVllmStartup, DEFAULT_BLOCK_SIZE } from './vllm-report.js';

const log = createLogger('engine');

/** Lines of the engine's log read for its start-up report (vLLM prints the KV cache lines within the first few hundred). */
export const CALIBRATION_LOG_LINES = 5000;

export interface CalibrationInput {
  stateDir: string;
  gpus: readonly GpuInfo[];
  model: { id: string; revision?: string | null };
  image: string;
  imageDigest: string | null;
  flags: Measurement['flags'];
  estimatedKvCacheTokens: number;
}

/**
 * Records what the engine reported; returns the measurement, or null when the lines hold no KV cache figure
 * (another engine, or a log cut short) or there is no GPU to key it by.
 */
export function recordEngineReport(input: CalibrationInput, lines: readonly string[], metrics: string | null): Measurement | null {
  const gpu = input.gpus[0];
  if (!gpu || gpu.memoryTotalMiB === null) return null;
  const report = parseVllmStartup(lines);
  let tokens = report.kvCacheTokens;
  if (tokens === null && metrics) {
    const info = parseCacheConfigInfo(metrics);
    if (info?.gpuBlocks != null) tokens = info.gpuBlocks * (info.blockSize ?? DEFAULT_BLOCK_SIZE);
  }
  // A refusal for a too long context names the pool it had: the longest context that fits is what it holds.
  if (tokens === null && report.refusal?.kind === 'context' && report.refusal.fits !== null) tokens = report.refusal.fits;
  if (tokens === null) return null;
  const measurement: Measurement = {
    gpuName: gpu.name,
    gpuMemoryMiB: gpu.memoryTotalMiB,
    model: input.model.id,
    revision: input.model.revision ?? null,
    image: input.image,
    imageDigest: input.imageDigest,
    flags: input.flags,
    kvCacheTokens: tokens,
    maxConcurrency: report.maxConcurrency?.concurrency ?? null,
    weightsGiB: report.weightsGiB,
    availableKvGiB: report.availableKvGiB,
    estimatedKvCacheTokens: input.estimatedKvCacheTokens,
    measuredAt: new Date().toISOString(),
  };
  try {
    recordMeasurement(input.stateDir, measurement);
  } catch (err) {
    // A cache of what engines said: failing to keep it must not fail the start.
    log('cannot record the measurement: %s', (err as Error).message);
    return null;
  }
  return measurement;
}

/** The image's content digest (its repo digest, else its id), null when Docker cannot say. */
export async function imageDigestOf(docker: Docker, image: string): Promise<string | null> {
  try {
    const info = await docker.getImage(image).inspect();
    return info.RepoDigests?.[0]?.split('@')[1] ?? info.Id ?? null;
  } catch {
    return null;
  }
}

/** The engine's /metrics text (open on vLLM even with --api-key), or null when it does not answer in 2 s. */
export async function fetchMetricsText(baseUrl: string): Promise<string | null> {
  try {
    const res = await fetch(`${baseUrl.replace(/\/v1$/, '')}/metrics`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? await res.text() : null;
  } catch {
    return null;
  }
}

/** Records what an engine of this plan said, and tells `note` the figure beside the estimate. */
export function calibrateFromPlan(
  plan: EnginePlan,
  options: { stateDir: string; gpuMemoryUtilization: number; note: (message: string) => void },
  where: { image: string; imageDigest: string | null },
  lines: readonly string[],
  metrics: string | null,
): void {
  if (plan.chosenGpus.length === 0 || plan.kind === 'cpu') return;
  const input: CalibrationInput = {
    stateDir: options.stateDir,
    gpus: plan.chosenGpus,
    model: { id: plan.model.id, revision: plan.model.revision ?? null },
    ...where,
    flags: {
      gpuMemoryUtilization: options.gpuMemoryUtilization,
      tensorParallel: plan.tensorParallel,
      maxModelLen: plan.maxModelLen,
      maxNumSeqs: plan.maxNumSeqs,
      extra: [...plan.model.engineArgs],
    },
    estimatedKvCacheTokens: plan.kvCache?.estimatedTokens ?? 0,
  };
  const measured = recordEngineReport(input, lines, metrics);
  if (measured) {
    const error = estimateError(input.estimatedKvCacheTokens, measured.kvCacheTokens);
    const off = error === null ? '' : `, ${error >= 0 ? '+' : ''}${(error * 100).toFixed(1)}%`;
    options.note(
      `vLLM's KV cache: ${measured.kvCacheTokens} tokens (the estimate said ${input.estimatedKvCacheTokens}${off}); kept for the next plan`,
    );
  }
}

/** The last lines of a local engine's log file (its start-up report is near the top of a fresh one). */
export function tailLines(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-CALIBRATION_LOG_LINES);
  } catch {
    return [];
  }
}
