/*
 * What vLLM measured at start, kept per (GPU name and memory, model, engine image digest, flags) in a small
 * JSON file in the state directory (0600, replaced atomically), so `models` and `up` plan with the KV cache
 * the engine really got instead of the formula, and say how far the formula was off.
 *
 * vLLM sizes its KV cache from what the GPU has left after the weights and a profiling pass, before it looks
 * at --max-model-len; so a measurement taken at one context also tells the pool at another, as long as the
 * GPU, model, utilization and tensor-parallel size are the same. The image is preferred when known (another
 * vLLM version may profile differently), else the newest measurement is taken.
 */

import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ensurePrivateDir } from '../core/paths.js';
import type { FitGpu } from './fit.js';
import type { ModelEntry } from './schema.js';

export const MEASUREMENTS_FILE = 'measurements.json';
/** Oldest measurements are dropped past this many; a box sees a handful of GPU x model combinations. */
const KEEP = 200;

const measurementSchema = z.object({
  gpuName: z.string(),
  gpuMemoryMiB: z.number(),
  model: z.string(),
  revision: z.string().nullable(),
  image: z.string(),
  /** The image's content digest (sha256:...), null when Docker did not say. */
  imageDigest: z.string().nullable(),
  flags: z.object({
    gpuMemoryUtilization: z.number(),
    tensorParallel: z.number().int(),
    maxModelLen: z.number().int(),
    maxNumSeqs: z.number().int(),
    /** Any other engine arguments (the catalog's engineArgs), as given. */
    extra: z.array(z.string()),
  }),
  /** vLLM's KV cache per engine, in tokens. */
  kvCacheTokens: z.number().int().nonnegative(),
  maxConcurrency: z.number().nullable(),
  /** The weights on one GPU, GiB (`Model loading took`). */
  weightsGiB: z.number().nullable(),
  availableKvGiB: z.number().nullable(),
  /** The estimate's KV cache for the same plan, kept to show the error. */
  estimatedKvCacheTokens: z.number().int().nonnegative(),
  measuredAt: z.string(),
});

const fileSchema = z.object({ version: z.literal(1), measurements: z.array(measurementSchema) });

export type Measurement = z.infer<typeof measurementSchema>;

export function measurementsPath(stateDir: string): string {
  return join(stateDir, MEASUREMENTS_FILE);
}

/** The measurements on file; a missing or unreadable file is none (it is a cache of what engines said). */
export function readMeasurements(stateDir: string): Measurement[] {
  const file = measurementsPath(stateDir);
  if (!existsSync(file)) return [];
  try {
    const parsed = fileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return parsed.success ? parsed.data.measurements : [];
  } catch {
    return [];
  }
}

function sameKey(a: Measurement, b: Measurement): boolean {
  return (
    a.gpuName === b.gpuName &&
    a.gpuMemoryMiB === b.gpuMemoryMiB &&
    a.model === b.model &&
    a.revision === b.revision &&
    (a.imageDigest ?? a.image) === (b.imageDigest ?? b.image) &&
    JSON.stringify(a.flags) === JSON.stringify(b.flags)
  );
}

/** Adds (or replaces, for the same key) one measurement; the file is written whole to a temp file and renamed. */
export function recordMeasurement(stateDir: string, measurement: Measurement): void {
  const kept = readMeasurements(stateDir).filter((m) => !sameKey(m, measurement));
  kept.push(measurement);
  ensurePrivateDir(stateDir);
  const file = measurementsPath(stateDir);
  const temp = `${file}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify({ version: 1, measurements: kept.slice(-KEEP) }, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, file);
}

export interface MeasurementQuery {
  gpuName: string;
  gpuMemoryMiB: number;
  model: string;
  gpuMemoryUtilization: number;
  tensorParallel: number;
  /** Prefer measurements of this image digest (or image reference). */
  image?: string | null;
}

/** The measurement that applies to a plan: same GPU, model, utilization and tensor parallel; same image first, then newest. */
export function findMeasurement(measurements: readonly Measurement[], query: MeasurementQuery): Measurement | null {
  const matching = measurements.filter(
    (m) =>
      m.gpuName === query.gpuName &&
      m.gpuMemoryMiB === query.gpuMemoryMiB &&
      m.model === query.model &&
      Math.abs(m.flags.gpuMemoryUtilization - query.gpuMemoryUtilization) < 1e-9 &&
      m.flags.tensorParallel === query.tensorParallel,
  );
  const newest = (list: Measurement[]) => list.sort((a, b) => b.measuredAt.localeCompare(a.measuredAt))[0] ?? null;
  const sameImage = query.image ? matching.filter((m) => m.imageDigest === query.image || m.image === query.image) : [];
  return newest(sameImage) ?? newest(matching);
}

/** How far the estimate was from the measurement, as a share of the measurement (+0.12 = 12% too high). */
export function estimateError(estimatedTokens: number, measuredTokens: number): number | null {
  return measuredTokens > 0 ? (estimatedTokens - measuredTokens) / measuredTokens : null;
}

/**
 * The fit estimate's measuredKvTokens for these measurements: the KV cache vLLM reported for a model on GPUs
 * of one kind (name and memory), at this utilization and tensor-parallel size. GPUs of mixed kinds have none.
 */
export function measuredKvLookup(
  measurements: readonly Measurement[],
  gpuMemoryUtilization: number,
  image?: string | null,
): (model: ModelEntry, gpus: FitGpu[], tensorParallel: number) => number | null {
  return (model, gpus, tensorParallel) => {
    const first = gpus[0];
    if (!first || first.memoryTotalMiB === null) return null;
    if (gpus.some((g) => g.name !== first.name || g.memoryTotalMiB !== first.memoryTotalMiB)) return null;
    const found = findMeasurement(measurements, {
      gpuName: first.name,
      gpuMemoryMiB: first.memoryTotalMiB,
      model: model.id,
      gpuMemoryUtilization,
      tensorParallel,
      image,
    });
    return found?.kvCacheTokens ?? null;
  };
}
