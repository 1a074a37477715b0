/*
 * Planning for the CPU engine (llama.cpp): which GGUF file on disk, how many threads, and whether it fits
 * in RAM. Everything here refuses before any pull.
 */

import { existsSync } from 'node:fs';
import { availableParallelism, homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { FitError, UsageError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/version.js';
import { checkModelFile, ModelFileProblem } from '../cpu/model-file.js';
import { findModel } from '../models/catalog.js';
import { ggufFetchHint, resolveHfEndpoint } from '../models/gguf-source.js';
import { estimateRamFit, type RamInfo } from '../models/ram-fit.js';
import type { Catalog, ModelEntry } from '../models/schema.js';
import type { CpuPlan } from './cpu-spec.js';

/** The model `up` serves on a CPU when none is given: tiny, shipped, and honest about being a demo. */
export const CPU_DEMO_MODEL = 'tiny-memory';
/** Where the container sees the model file (mounted read-only). */
export const CONTAINER_MODEL_DIR = '/models';

/** Where downloaded GGUF files live: $CS_LLM_GGUF_DIR, else ~/.cache/cs-llm/models (XDG_CACHE_HOME respected). */
export function ggufDir(env: NodeJS.ProcessEnv): string {
  if (env.CS_LLM_GGUF_DIR) return resolve(env.CS_LLM_GGUF_DIR);
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'cs-llm', 'models');
}

/** The models shipped with cs-llm (the tiny demo models). */
export const SHIPPED_MODELS_DIR = join(PACKAGE_ROOT, 'models');

/**
 * Threads for llama.cpp: CS_LLM_CPU_THREADS, else all CPUs but one (at least 1). Never llama.cpp's own
 * default: inside a container os.cpus() reports the host's cores, and too many threads under a CPU quota
 * ran 11x slower here.
 */
export function cpuThreads(env: NodeJS.ProcessEnv, cpus = availableParallelism()): number {
  const given = env.CS_LLM_CPU_THREADS;
  if (given !== undefined && given !== '') {
    const n = Number(given);
    if (!Number.isInteger(n) || n < 1 || n > cpus) {
      throw new UsageError(`CS_LLM_CPU_THREADS must be a whole number from 1 to ${cpus} (the CPUs of this machine), got "${given}"`);
    }
    return n;
  }
  return Math.max(1, Math.min(cpus - 1, 16));
}

/** A catalog-less model for `--model /path/file.gguf`: weights from the file; geometry unknown (the engine checks the context). */
function modelForPath(path: string, sizeBytes: number): ModelEntry {
  const name = basename(path)
    .replace(/\.gguf$/i, '')
    .toLowerCase()
    .replace(/[^a-z0-9._-]/g, '-');
  return {
    id: name,
    servedName: name,
    family: 'gguf',
    parameters: 1,
    quantization: 'gguf',
    weightsBytes: Math.max(1, sizeBytes),
    layers: 1,
    attentionHeads: 1,
    kvHeads: 1,
    headDim: 1,
    maxContext: 1 << 20,
    toolCallParser: null,
    chatTemplate: null,
    engineArgs: [],
    minComputeCapability: 3,
    license: 'unknown',
    engines: ['cpu'],
    gguf: { file: basename(path) },
  };
}

export interface CpuModelChoice {
  model: ModelEntry;
  hostModelPath: string;
  /** From the catalog; verified by the engine before loading. */
  sha256?: string;
  notes: string[];
}

/** The model and its GGUF file on this host; refuses (with what to do) when the file is missing or not GGUF. */
export function chooseCpuModel(
  catalog: Catalog,
  requested: string | undefined,
  env: NodeJS.ProcessEnv,
  hfEndpoint?: string,
): CpuModelChoice {
  const notes: string[] = [];
  let model: ModelEntry;
  let hostModelPath: string;
  if (requested && /\.gguf$/i.test(requested)) {
    hostModelPath = resolve(requested);
    const size = checkHostFile(hostModelPath, requested);
    model = modelForPath(hostModelPath, size);
  } else {
    model = findModel(catalog, requested ?? CPU_DEMO_MODEL);
    if (!model.engines.includes('cpu') || !model.gguf) {
      throw new UsageError(`model ${model.id} does not run on the cpu engine (it is for: ${model.engines.join(', ')})`, {
        next: 'Pick a GGUF model: cs-llm models --engine cpu lists them, or pass --model /path/to/model.gguf.',
      });
    }
    const candidates = [join(ggufDir(env), model.gguf.file), join(SHIPPED_MODELS_DIR, model.gguf.file)];
    hostModelPath = candidates.find((c) => existsSync(c)) ?? candidates[0]!;
    const chosen = model;
    checkHostFile(hostModelPath, model.id, () =>
      ggufFetchHint(chosen, { dir: ggufDir(env), endpoint: resolveHfEndpoint(hfEndpoint, env).endpoint }),
    );
    if (!requested) {
      notes.push(
        `no model given: serving ${model.id}, a tiny demo model (${(model.weightsBytes / 1e6).toFixed(1)} MB) that only recalls names and order numbers; ` +
          `for a real model, cs-llm models --engine cpu shows what fits, cs-llm models pull <id> fetches one (e.g. qwen2.5-1.5b-instruct-q4_k_m), then cs-llm up --engine cpu --model <id>; ` +
          `or any GGUF file: cs-llm up --engine cpu --model /path/to/model.gguf`,
      );
    }
  }
  return { model, hostModelPath, sha256: model.gguf?.sha256, notes };
}

function checkHostFile(path: string, asked: string, fetchHint?: () => string): number {
  try {
    return checkModelFile(path).sizeBytes;
  } catch (err) {
    if (!(err instanceof ModelFileProblem)) throw err;
    if (err.kind === 'missing') {
      throw new UsageError(`${err.message}`, {
        next: fetchHint ? fetchHint() : `Download the GGUF file for ${asked} to ${path}, or pass --model /path/to/model.gguf.`,
      });
    }
    throw new UsageError(err.message, {
      next: 'Pass a GGUF file (llama.cpp format; the file starts with "GGUF"). Safetensors models run on the vllm engine.',
    });
  }
}

/** A GGUF given by path has no catalog geometry: without --context, a context nearly every model supports. */
export const BARE_GGUF_CONTEXT = 2048;

export interface CpuFitInput {
  model: ModelEntry;
  context?: number;
  ram: RamInfo;
  sequences: number;
  /** A catalog entry (geometry known) or a bare file (only weights known). */
  fromCatalog: boolean;
}

/** Context and the RAM check: refuses a context beyond the model's and a model that does not fit. */
export function planCpuFit(input: CpuFitInput): { maxModelLen: number; notes: string[] } {
  const { model, context, ram, sequences } = input;
  if (context !== undefined && input.fromCatalog && context > model.maxContext) {
    throw new UsageError(`--context ${context} is larger than the model's context length ${model.maxContext} (${model.id})`, {
      next: `Use --context ${model.maxContext} or less, or a model with a longer context.`,
    });
  }
  const fit = estimateRamFit(model, ram, { context: context ?? (input.fromCatalog ? undefined : BARE_GGUF_CONTEXT), sequences });
  if (fit.verdict === 'no') {
    throw new FitError(`model ${model.id} does not fit in this machine's memory: ${fit.reason}`, {
      next: 'Free memory, use a smaller --context, or a smaller model (cs-llm models --engine cpu shows what fits).',
    });
  }
  const notes = fit.verdict === 'tight' ? [`memory is tight: ${fit.reason.replace(/^tight: /, '')}`] : [];
  return { maxModelLen: fit.maxModelLen ?? context ?? BARE_GGUF_CONTEXT, notes };
}

export interface CpuEnginePlan {
  model: ModelEntry;
  maxModelLen: number;
  maxNumSeqs: number;
  cpu: CpuPlan;
}

/** Model file, context, RAM fit and threads for `up --engine cpu`; refuses before anything is pulled. */
export function planCpuEngine(
  catalog: Catalog,
  engine: { model?: string; context?: number; hfEndpoint?: string },
  env: NodeJS.ProcessEnv,
  ram: RamInfo,
): CpuEnginePlan {
  const threads = cpuThreads(env);
  const choice = chooseCpuModel(catalog, engine.model, env, engine.hfEndpoint);
  const sequences = 1;
  const fit = planCpuFit({
    model: choice.model,
    context: engine.context,
    ram,
    sequences,
    fromCatalog: !(engine.model && /\.gguf$/i.test(engine.model)),
  });
  const notes = [...choice.notes, ...fit.notes];
  return {
    model: choice.model,
    maxModelLen: fit.maxModelLen,
    maxNumSeqs: sequences,
    cpu: {
      hostModelPath: choice.hostModelPath,
      containerModelPath: `${CONTAINER_MODEL_DIR}/${basename(choice.hostModelPath)}`,
      threads,
      sha256: choice.sha256,
      notes,
    },
  };
}
