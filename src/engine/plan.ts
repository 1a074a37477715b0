import type Docker from 'dockerode';
import type { Config } from '../core/config.js';
import { EnvironmentError, FitError, UsageError } from '../core/errors.js';
import type { Paths } from '../core/paths.js';
import { detectGpus, type GpuReport } from '../gpu/detect.js';
import type { GpuInfo } from '../gpu/parse.js';
import { selectGpus } from '../gpu/select.js';
import { findModel, loadCatalog } from '../models/catalog.js';
import { estimateFit, recommendModel } from '../models/fit.js';
import { measuredKvLookup, readMeasurements } from '../models/measurements.js';
import { readRamInfo } from '../models/ram.js';
import type { ModelEntry } from '../models/schema.js';
import { chooseAutoEngine } from './auto.js';
import { refuseBusyGpus, type ComputeAppsQuery } from './busy-gpu.js';
import { planCpuEngine } from './cpu-plan.js';
import type { CpuPlan } from './cpu-spec.js';
import { createDockerClient } from './docker.js';
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

export interface EnginePlan {
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
    return { kind, gpus, chosenGpus, model, maxModelLen, maxNumSeqs: NO_GPU_DEFAULT_SEQS, tensorParallel: 1 };
  }
  const fit = estimateFit(model, chosenGpus, fitOptions);
  if (fit.verdict === 'no') {
    const alternative = recommendModel(catalog, chosenGpus, fitOptions);
    const tryThis = alternative && alternative.model.id !== model.id ? `Try --model ${alternative.model.id}` : 'Try a smaller model';
    throw new FitError(`model ${model.id} does not fit ${describeGpus(chosenGpus)}: ${fit.reason}`, {
      next: `${tryThis}${request.engine.context ? ', or a smaller --context' : ''}; cs-llm models shows what fits.`,
    });
  }
  // Request exactly the GPUs the plan uses when that is a subset of those allowed.
  const used = chosenGpus.filter((g) => fit.gpuIndexes.includes(g.index));
  const selection: GpuSelection =
    used.length > 0 && used.length < chosenGpus.length ? { mode: 'ids', ids: used.map((g) => String(g.index)) } : gpus;
  return {
    kind,
    gpus: selection,
    chosenGpus: used.length > 0 ? used : chosenGpus,
    model,
    maxModelLen: fit.maxModelLen!,
    maxNumSeqs: fit.maxNumSeqs!,
    tensorParallel: fit.tensorParallel,
    kvCache: { source: fit.measured ? 'measured' : 'estimated', tokens: fit.kvCacheTokens, estimatedTokens: fit.estimatedKvCacheTokens },
  };
}

function describeGpus(gpus: GpuInfo[]): string {
  return gpus.map((g) => `GPU ${g.index} (${g.name})`).join(' + ');
}
