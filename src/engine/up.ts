/*
 * `cs-llm up` as a service: checks -> model + fit (refused before any pull) -> pull -> create -> start ->
 * readiness. Progress goes out as events; the CLI decides how they look. Without a Docker engine,
 * the simulator runs as a local process so the main job works on any machine.
 */

import { existsSync } from 'node:fs';
import type Docker from 'dockerode';
import type { Config } from '../core/config.js';
import { ConflictError, EnvironmentError, FitError, UsageError } from '../core/errors.js';
import { daemonStatus } from '../daemon/lifecycle.js';
import type { Paths } from '../core/paths.js';
import { detectGpus, type GpuReport } from '../gpu/detect.js';
import type { GpuInfo } from '../gpu/parse.js';
import { selectGpus } from '../gpu/select.js';
import { findModel, loadCatalog } from '../models/catalog.js';
import { estimateFit, recommendModel, formatGiB } from '../models/fit.js';
import type { ModelEntry } from '../models/schema.js';
import { isPortFree, upContainer, type EngineProgress } from './container.js';
import { createDockerClient, probeDocker } from './docker.js';
import { engineKindInfo, type EngineKind, type StageTimeouts } from './kinds.js';
import { ensureDaemonInFront, type DaemonFront } from './front.js';
import { upLocalProcess } from './local.js';
import { formatGpuSelection, instanceIdFor, parseGpuSelection, type EngineModel, type EngineSpecInput, type GpuSelection } from './spec.js';
import { buildLocalSimImage, isDefaultSimImage } from './sim-image.js';
import { chooseAutoEngine } from './auto.js';
import { planCpuEngine } from './cpu-plan.js';
import type { CpuPlan } from './cpu-spec.js';
import { readRamInfo } from '../models/ram.js';
import { hfRepoCacheDir, modelCacheDir } from './model-files.js';
import { checkOfflineReady } from './offline.js';
import { freeDisk } from '../core/disk.js';

export type EngineConfig = Config['engine'];

export type UpProgress = EngineProgress | { stage: 'plan'; message: string };

export interface UpRequest {
  engine: EngineConfig;
  /** config.models: the user's catalog additions. */
  userModels?: unknown[];
  paths: Paths;
  env?: NodeJS.ProcessEnv;
  /** Extra environment for the engine (--engine-env KEY=VALUE). */
  extraEnv?: Record<string, string>;
  timeouts?: Partial<StageTimeouts>;
  onProgress?: (event: UpProgress) => void;
  signal?: AbortSignal;
  /** Start (or reuse) the chat daemon in front of the engine once it serves. */
  daemon?: boolean;
  /** Where the daemon will listen (config daemon.host/port), checked before anything starts. */
  daemonListen?: { host: string; port: number };
}

export interface UpDeps {
  docker?: Docker;
  detectGpus?: (env: NodeJS.ProcessEnv) => Promise<GpuReport>;
}

export interface UpResult {
  engine: EngineKind;
  mode: 'container' | 'process';
  /** OpenAI-compatible base URL on loopback. */
  baseUrl: string;
  port: number;
  model: string;
  servedName: string;
  maxModelLen: number;
  maxNumSeqs: number;
  gpus: string;
  gpuNames: string[];
  image: string | null;
  containerName: string | null;
  pid: number | null;
  reused: boolean;
  replaced: boolean;
  pulled: boolean;
  readyInMs: number;
  /** The chat daemon in front of the engine, when asked for. */
  daemon: DaemonFront | null;
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
  };
}

/** Without GPUs (the simulator), a context that every catalog model supports. */
const NO_GPU_DEFAULT_CONTEXT = 8192;
const NO_GPU_DEFAULT_SEQS = 16;

/** Checks, GPU choice, model choice and fit: everything that can refuse before anything is pulled. */
export async function planEngine(request: UpRequest, deps: UpDeps = {}): Promise<EnginePlan> {
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
  }

  const catalog = loadCatalog({ userModels: request.userModels });
  // The estimate picks the GPUs and the tensor-parallel size itself (one GPU when the model fits there).
  const fitOptions = {
    gpuMemoryUtilization: request.engine.gpuMemoryUtilization,
    context: request.engine.context,
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
  };
}

function describeGpus(gpus: GpuInfo[]): string {
  return gpus.map((g) => `GPU ${g.index} (${g.name})`).join(' + ');
}

/** The chat daemon's port must be free, or held by our own daemon (which up reuses or restarts). */
async function checkDaemonPort(request: UpRequest): Promise<void> {
  if (!request.daemon || !request.daemonListen) return;
  const { host, port } = request.daemonListen;
  const current = await daemonStatus(request.paths);
  if (current.running && current.url && Number(new URL(current.url).port) === port) return;
  if (!(await isPortFree(port, host))) {
    throw new ConflictError(`the chat daemon's port ${port} on ${host} is in use by another process`, {
      next: `Give the daemon another port (CS_LLM_DAEMON_PORT=${port + 1}, or daemon.port in the config), or start only the engine with --no-daemon.`,
    });
  }
}

/** The Hugging Face cache folder of one repository; defined with the engines' other model-file knowledge. */
export { hfRepoCacheDir };

/** Room on disk for the weights, unless they are (at least partly) in the cache already. */
export async function checkDiskForWeights(hfCacheDir: string, model: Pick<ModelEntry, 'id' | 'hfRepo' | 'weightsBytes'>): Promise<void> {
  if (existsSync(hfRepoCacheDir(hfCacheDir, model.hfRepo ?? model.id))) return;
  const { at, freeBytes: free } = await freeDisk(hfCacheDir);
  if (free === null) return; // cannot tell: the download itself will say
  const needed = model.weightsBytes * 1.05;
  if (free < needed) {
    throw new EnvironmentError(
      `not enough disk for the weights of ${model.id}: they need about ${formatGiB(needed)}, ${formatGiB(free)} are free at ${at}`,
      {
        next: 'Free space there, or point the Hugging Face cache at a larger disk (CS_LLM_ENGINE_HF_CACHE_DIR, or engine.hfCacheDir in the config).',
      },
    );
  }
}

export async function up(request: UpRequest, deps: UpDeps = {}): Promise<UpResult> {
  await checkDaemonPort(request);
  const engine = await upEngine(request, deps);
  if (!request.daemon) return { ...engine, daemon: null };
  request.onProgress?.({ stage: 'note', message: `engine serving at ${engine.baseUrl}; starting the chat daemon in front of it` });
  const daemon = await ensureDaemonInFront(request.paths, engine.baseUrl.replace(/\/v1$/, ''), request.env ?? process.env);
  request.onProgress?.({
    stage: 'note',
    message: `chat daemon ${daemon.reused ? 'already running' : 'started'} at ${daemon.url} (pid ${daemon.pid})`,
  });
  return { ...engine, daemon };
}

/** Everything up to a serving engine, without the daemon. */
export async function upEngine(request: UpRequest, deps: UpDeps = {}): Promise<Omit<UpResult, 'daemon'>> {
  const env = request.env ?? process.env;
  const plan = await planEngine(request, deps);
  const image = request.engine.image ?? engineKindInfo(plan.kind).defaultImage;
  const gpuNames = plan.chosenGpus.map((g) => `${g.index}: ${g.name}`);
  for (const message of plan.notes ?? []) request.onProgress?.({ stage: 'note', message });
  request.onProgress?.({
    stage: 'plan',
    message: `${plan.kind} engine, model ${plan.model.id} (context ${plan.maxModelLen}, ${plan.maxNumSeqs} sequences), ${plan.cpu ? `${plan.cpu.threads} CPU thread(s), file ${plan.cpu.hostModelPath}` : `GPUs: ${gpuNames.join(', ') || 'none'}`}`,
  });
  const input: EngineSpecInput = {
    kind: plan.kind,
    image,
    model: engineModelOf(plan.model, plan.kind),
    maxModelLen: plan.maxModelLen,
    maxNumSeqs: plan.maxNumSeqs,
    gpuMemoryUtilization: request.engine.gpuMemoryUtilization,
    gpus: plan.gpus,
    tensorParallel: plan.tensorParallel,
    port: request.engine.port,
    hfCacheDir: modelCacheDir({ engine: request.engine }, env),
    offline: request.engine.offline,
    hfToken: env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined,
    extraEnv: request.extraEnv,
    instance: instanceIdFor(request.paths.home),
    cpu: plan.cpu,
  };
  const base = {
    engine: plan.kind,
    model: plan.model.id,
    servedName: plan.model.servedName,
    maxModelLen: plan.maxModelLen,
    maxNumSeqs: plan.maxNumSeqs,
    gpus: formatGpuSelection(plan.gpus),
    gpuNames,
  };

  const timeouts: Partial<StageTimeouts> = {
    ...(request.engine.loadTimeoutSeconds ? { loadingMs: request.engine.loadTimeoutSeconds * 1000 } : {}),
    ...request.timeouts,
  };
  if (engineKindInfo(plan.kind).mountsHfCache && !request.engine.offline) await checkDiskForWeights(input.hfCacheDir, plan.model);
  const docker = deps.docker ?? createDockerClient(env);
  const probe = await probeDocker(docker, env);
  const runLocal = async (why: string): Promise<Omit<UpResult, 'daemon'>> => {
    request.onProgress?.({
      stage: 'note',
      message: `${why}: running the ${plan.kind === 'cpu' ? 'cpu engine' : 'simulator'} as a local process`,
    });
    const local = await upLocalProcess(request.paths.stateDir, input, {
      timeouts,
      signal: request.signal,
      onProgress: (event) => request.onProgress?.({ stage: 'readiness', ...event }),
      onNote: (message) => request.onProgress?.({ stage: 'note', message }),
    });
    return {
      ...base,
      mode: 'process',
      baseUrl: local.baseUrl,
      port: local.port,
      image: null,
      containerName: null,
      pid: local.pid,
      reused: local.reused,
      replaced: local.replaced,
      pulled: false,
      readyInMs: local.readyInMs,
    };
  };
  if (!probe.reachable) {
    if ((plan.kind === 'sim' && plan.gpus.mode === 'none') || plan.kind === 'cpu') return runLocal(`no Docker engine (${probe.detail})`);
    throw new EnvironmentError(`Docker Engine is not usable: ${probe.detail}`, {
      next: `${probe.fix ?? 'Start dockerd.'}${plan.kind === 'sim' ? ' Or use --gpus none to run the simulator as a local process.' : ''}`,
    });
  }

  // Offline: nothing is pulled, and everything the engine needs is checked (all of it listed) before anything starts.
  const pullPolicy = request.engine.offline ? 'never' : request.engine.pullPolicy;
  if (request.engine.offline)
    await checkOfflineReady(docker, { kind: plan.kind, image, model: plan.model, hfCacheDir: input.hfCacheDir, env });
  // The cpu engine's default image comes from the project's registry; where it cannot be pulled, the
  // engine runs as a local process instead (an explicit --image still fails).
  let cpuImageUnavailable: Error | null = null;
  const result = await upContainer(docker, input, {
    pullPolicy,
    timeouts,
    signal: request.signal,
    onProgress: request.onProgress,
    onImageUnavailable:
      plan.kind === 'sim' && isDefaultSimImage(image) && pullPolicy !== 'never'
        ? async (ref, err) => {
            request.onProgress?.({
              stage: 'note',
              message: `cannot pull ${ref} (${err.message.split('\n')[0]}); building the simulator image from this install`,
            });
            await buildLocalSimImage(docker, ref);
            return true;
          }
        : plan.kind === 'cpu' && image === engineKindInfo('cpu').defaultImage && pullPolicy !== 'never'
          ? async (_ref, err) => {
              cpuImageUnavailable = err;
              return false;
            }
          : undefined,
  }).catch((err: unknown) => {
    if (cpuImageUnavailable === null) throw err;
    return null;
  });
  if (result === null)
    return runLocal(`cannot pull ${image} (${(cpuImageUnavailable as Error | null)?.message.split('\n')[0] ?? 'unavailable'})`);
  return {
    ...base,
    mode: 'container',
    baseUrl: result.baseUrl,
    port: result.port,
    image: result.image,
    containerName: result.containerName,
    pid: null,
    reused: result.reused,
    replaced: result.replaced,
    pulled: result.pulled,
    readyInMs: result.readyInMs,
  };
}
