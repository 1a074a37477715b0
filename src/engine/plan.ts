import type Docker from 'dockerode';
import type { Config } from '../core/config.js';
import { EnvironmentError, FitError, UsageError } from '../core/errors.js';
import type { Paths } from '../core/paths.js';
import { detectGpus, type GpuReport } from '../gpu/detect.js';
import type { GpuInfo } from '../gpu/parse.js';
import { selectGpus } from '../gpu/select.js';
import { findModel, loadCatalog } from '../models/catalog.js';
import { estimateFit, recommendModel, type FitOptions, type FitResult } from '../models/fit.js';
import { measuredKvLookup, readMeasurements } from '../models/measurements.js';
import { readRamInfo } from '../models/ram.js';
import type { Catalog, ModelEntry } from '../models/schema.js';
import { chooseAutoEngine } from './auto.js';
import { refuseBusyGpus, type ComputeAppsQuery } from './busy-gpu.js';
import { planCpuEngine } from './cpu-plan.js';
import type { CpuPlan } from './cpu-spec.js';
import { createDockerClient } from './docker.js';
import { oldDriverNote } from './driver-cuda.js';
import { engineKindInfo, type EngineKind } from './kinds.js';
import { formatGpuSelection, instanceIdFor, parseGpuSelection, type EngineModel, type GpuSelection } from './spec.js';

// The plan of `cs-llm up`: engine kind, GPUs, model, context and sequences from the fit estimate. Everything
// that can refuse before anything is pulled or started.

export type EngineConfig = Config['engine'];

export interface PlanRequest {
  engine: EngineConfig;
  /** config.models: the user's catalog additions. */
  userModels?: unknown[];
  paths: Paths;
  env?: NodeJS.ProcessEnv;
}

export interface PlanDeps {
  docker?: Docker;
  detectGpus?: (env: NodeJS.ProcessEnv) => Promise<GpuReport>;
  /** Who holds a busy GPU's memory (nvidia-smi's compute-apps query by default). */
  computeApps?: ComputeAppsQuery;
}

/** One engine of a plan: the GPUs it gets and its port on 127.0.0.1. */
export interface PlannedEngine {
  gpus: GpuSelection;
  chosenGpus: GpuInfo[];
  tensorParallel: number;
  port: number;
}

export interface EnginePlan {
  /**
   * single: one engine (on one GPU, or none); replicas: one engine per GPU, each with the whole model, behind the
   * daemon with session-sticky routing; tensor-parallel: one engine split over several GPUs.
   */
  placement: 'single' | 'replicas' | 'tensor-parallel';
  /** Every engine to start; the fields below describe the first (all replicas share model, context and sequences). */
  engines: PlannedEngine[];
  kind: EngineKind;
  gpus: GpuSelection;
  chosenGpus: GpuInfo[];
  model: ModelEntry;
  maxModelLen: number;
  maxNumSeqs: number;
  tensorParallel: number;
  /** The cpu engine's model file and threads. */
  cpu?: CpuPlan;
  /** Lines to show before starting (why --engine auto chose this engine; the demo-model notice). */
  notes?: string[];
  /**
   * Where the KV cache figure of the plan comes from: vLLM's report of an earlier start on these GPUs
   * (measurements.json) or the formula; both figures, per engine. Absent without GPUs.
   */
  kvCache?: { source: 'measured' | 'estimated'; tokens: number; estimatedTokens: number };
}

export function resolveKind(kind: EngineConfig['kind']): EngineKind {
  if (kind === 'auto' || kind === 'vllm') return 'vllm';
  if (kind === 'sim') return 'sim';
  return 'cpu';
}

/** The model as the container spec needs it; vLLM finds tool chat templates in its examples folder. */
export function engineModelOf(model: ModelEntry, kind: EngineKind): EngineModel {
  let chatTemplate = model.chatTemplate ?? null;
  if (chatTemplate && kind === 'vllm' && !chatTemplate.includes('/')) chatTemplate = `/vllm-workspace/examples/${chatTemplate}`;
  return {
    id: model.id,
    hfRepo: model.hfRepo ?? model.id,
    servedName: model.servedName,
    toolCallParser: model.toolCallParser,
    chatTemplate,
    engineArgs: model.engineArgs,
    ...(model.revision ? { revision: model.revision } : {}),
  };
}

/** Without GPUs (the simulator), a context that every catalog model supports. */
const NO_GPU_DEFAULT_CONTEXT = 8192;
const NO_GPU_DEFAULT_SEQS = 16;

/** Checks, GPU choice, model choice and fit: everything that can refuse before anything is pulled. */
export async function planEngine(request: PlanRequest, deps: PlanDeps = {}): Promise<EnginePlan> {
  const env = request.env ?? process.env;
  const notes: string[] = [];
  let kind = resolveKind(request.engine.kind);
  if (request.engine.kind === 'auto') {
    const detect = () => (deps.detectGpus ?? ((e) => detectGpus({ env: e })))(env);
    const choice =
      request.engine.gpus?.trim().toLowerCase() === 'none'
        ? { kind: 'cpu' as const, why: 'engine auto: cpu, because --gpus none asks for no GPU' }
        : await chooseAutoEngine(env, detect, deps.docker ?? createDockerClient(env), instanceIdFor(request.paths.home));
    kind = choice.kind;
    notes.push(choice.why);
  }
  if (kind === 'cpu') {
    const cpuPlan = planCpuEngine(loadCatalog({ userModels: request.userModels }), request.engine, env, readRamInfo());
    return {
      placement: 'single',
      engines: [{ gpus: { mode: 'none' }, chosenGpus: [], tensorParallel: 1, port: request.engine.port }],
      kind,
      gpus: { mode: 'none' },
      chosenGpus: [],
      model: cpuPlan.model,
      maxModelLen: cpuPlan.maxModelLen,
      maxNumSeqs: cpuPlan.maxNumSeqs,
      tensorParallel: 1,
      cpu: cpuPlan.cpu,
      notes: [...notes, ...cpuPlan.cpu.notes],
    };
  }
  const info = engineKindInfo(kind);
  const gpus = parseGpuSelection(request.engine.gpus ?? info.defaultGpus);
  if (info.needsGpu && gpus.mode === 'none') {
    throw new UsageError('the vllm engine needs a GPU, and --gpus none asks for none', {
      next: 'Use --gpus all (or GPU indexes such as 0,1), or --engine sim --gpus none to run without a GPU.',
    });
  }
  let chosenGpus: GpuInfo[] = [];
  if (gpus.mode !== 'none') {
    const report = await (deps.detectGpus ?? ((e) => detectGpus({ env: e })))(env);
    if (!report.usable) {
      throw new EnvironmentError(`no usable NVIDIA GPU: ${report.problem ?? 'none found'}`, {
        next: report.fix?.includes('--engine')
          ? report.fix
          : `${report.fix ?? 'Install the NVIDIA driver and the NVIDIA Container Toolkit.'} Without a GPU: cs-llm up --engine cpu (or --engine sim --gpus none).`,
      });
    }
    chosenGpus = selectGpus(report.gpus, formatGpuSelection(gpus));
    const oldDriver =
      kind === 'vllm' ? oldDriverNote(report.driverVersion, request.engine.image ?? engineKindInfo(kind).defaultImage) : null;
    if (oldDriver) notes.push(oldDriver);
    // GPUs asked for by index must have the memory vLLM wants free; with "all" the fit passes over busy ones.
    if (gpus.mode === 'ids') await refuseBusyGpus(chosenGpus, request.engine.gpuMemoryUtilization, env, deps.computeApps);
  }

  const catalog = loadCatalog({ userModels: request.userModels });
  // The estimate picks the GPUs and the tensor-parallel size itself (one GPU when the model fits there).
  const fitOptions = {
    gpuMemoryUtilization: request.engine.gpuMemoryUtilization,
    context: request.engine.context,
    // What vLLM reported on these GPUs before replaces the formula's KV cache (src/models/measurements.ts).
    measuredKvTokens: measuredKvLookup(
      readMeasurements(request.paths.stateDir),
      request.engine.gpuMemoryUtilization,
      request.engine.image ?? engineKindInfo(kind).defaultImage,
    ),
  };
  let model: ModelEntry;
  if (request.engine.model) {
    model = findModel(catalog, request.engine.model);
  } else if (chosenGpus.length > 0) {
    const recommended = recommendModel(catalog, chosenGpus, fitOptions);
    if (!recommended) {
      throw new FitError(`no catalog model fits ${describeGpus(chosenGpus)}`, {
        next: 'Pick a model with --model (cs-llm models shows the estimates), or add a smaller one to your config.',
      });
    }
    model = recommended.model;
  } else {
    model = catalog.models.find((m) => m.engines.includes('vllm')) ?? catalog.models[0]!;
    if (!model) throw new UsageError('the model catalog is empty', { next: 'Add a model to the "models" list of your config.' });
  }
  if (kind === 'vllm' && !model.engines.includes('vllm')) {
    throw new UsageError(`model ${model.id} does not run on the vllm engine (it is for: ${model.engines.join(', ')})`, {
      next: 'Pick a vllm model with --model (cs-llm models lists them).',
    });
  }

  if (chosenGpus.length === 0) {
    const maxModelLen = Math.min(request.engine.context ?? NO_GPU_DEFAULT_CONTEXT, model.maxContext);
    const engines = [{ gpus, chosenGpus, tensorParallel: 1, port: request.engine.port }];
    const plan: EnginePlan = {
      placement: 'single',
      engines,
      kind,
      gpus,
      chosenGpus,
      model,
      maxModelLen,
      maxNumSeqs: NO_GPU_DEFAULT_SEQS,
      tensorParallel: 1,
    };
    return withNotes(plan, notes);
  }
  return withNotes(placeOnGpus(request, catalog, model, kind, gpus, chosenGpus, fitOptions), notes);
}

/** The plan with the notes gathered on the way to it (engine auto's choice, an old driver) ahead of its own. */
function withNotes(plan: EnginePlan, notes: string[]): EnginePlan {
  return notes.length === 0 ? plan : { ...plan, notes: [...notes, ...(plan.notes ?? [])] };
}

/**
 * Where the engines go on the chosen GPUs. One GPU: one engine. Several, with placement auto: a model that fits
 * one GPU gets an engine on each GPU where it fits (replicas: more sequences in all, and a GPU that fails takes
 * only its share down); one that does not is split tensor parallel over the fewest GPUs that hold it (the fit
 * estimate tries 2, 4, 8). --placement replicas or tensor-parallel forces either.
 */
function placeOnGpus(
  request: PlanRequest,
  catalog: Catalog,
  model: ModelEntry,
  kind: EngineKind,
  gpus: GpuSelection,
  chosenGpus: GpuInfo[],
  fitOptions: FitOptions,
): EnginePlan {
  const placement = request.engine.placement ?? 'auto';
  const port = request.engine.port;
  const refuse = (fit: FitResult, what: string): never => {
    const alternative = recommendModel(catalog, chosenGpus, fitOptions);
    const tryThis = alternative && alternative.model.id !== model.id ? `Try --model ${alternative.model.id}` : 'Try a smaller model';
    throw new FitError(`model ${model.id} does not fit ${what}: ${fit.reason}`, {
      next: `${tryThis}${request.engine.context ? ', or a smaller --context' : ''}; cs-llm models shows what fits.`,
    });
  };
  const kvCache = (fit: FitResult): EnginePlan['kvCache'] => ({
    source: fit.measured ? 'measured' : 'estimated',
    tokens: fit.kvCacheTokens,
    estimatedTokens: fit.estimatedKvCacheTokens,
  });

  if (placement === 'tensor-parallel' && chosenGpus.length > 1) {
    const fit = estimateFit(model, chosenGpus, { ...fitOptions, tensorParallel: chosenGpus.length });
    if (fit.verdict === 'no') refuse(fit, `split over ${describeGpus(chosenGpus)}`);
    const engine = { gpus, chosenGpus, tensorParallel: fit.tensorParallel, port };
    return { placement: 'tensor-parallel', engines: [engine], kind, model, ...engine, ...sizes(fit), kvCache: kvCache(fit) };
  }

  const fit = estimateFit(model, chosenGpus, fitOptions);
  const alone = chosenGpus.map((gpu) => ({ gpu, fit: estimateFit(model, [gpu], fitOptions) })).filter((g) => g.fit.verdict !== 'no');
  if (placement === 'replicas' && alone.length === 0) refuse(fit, `one GPU of ${describeGpus(chosenGpus)} (--placement replicas)`);
  if (alone.length >= 2 && (placement === 'replicas' || fit.tensorParallel === 1)) {
    // Every replica runs the plan of the smallest GPU among them, so one --max-model-len serves all.
    const smallest = alone.reduce((a, b) => ((b.gpu.memoryTotalMiB ?? 0) < (a.gpu.memoryTotalMiB ?? 0) ? b : a));
    const engines = alone.map(({ gpu }, i) => ({
      gpus: { mode: 'ids' as const, ids: [String(gpu.index)] },
      chosenGpus: [gpu],
      tensorParallel: 1,
      port: port + i,
    }));
    return { placement: 'replicas', engines, kind, model, ...engines[0]!, ...sizes(smallest.fit), kvCache: kvCache(smallest.fit) };
  }
  if (fit.verdict === 'no') refuse(fit, describeGpus(chosenGpus));
  // Request exactly the GPUs the plan uses when that is a subset of those allowed.
  const used = chosenGpus.filter((g) => fit.gpuIndexes.includes(g.index));
  const selection: GpuSelection =
    used.length > 0 && used.length < chosenGpus.length ? { mode: 'ids', ids: used.map((g) => String(g.index)) } : gpus;
  const engine = { gpus: selection, chosenGpus: used.length > 0 ? used : chosenGpus, tensorParallel: fit.tensorParallel, port };
  return {
    placement: fit.tensorParallel > 1 ? 'tensor-parallel' : 'single',
    engines: [engine],
    kind,
    model,
    ...engine,
    ...sizes(fit),
    kvCache: kvCache(fit),
  };
}

function sizes(fit: FitResult): { maxModelLen: number; maxNumSeqs: number } {
  return { maxModelLen: fit.maxModelLen!, maxNumSeqs: fit.maxNumSeqs! };
}

function describeGpus(gpus: GpuInfo[]): string {
  return gpus.map((g) => `GPU ${g.index} (${g.name})`).join(' + ');
}
