/*
 * `cs-llm up` as a service: checks -> model + fit (refused before any pull) -> pull -> create -> start ->
 * readiness. Progress goes out as events; the CLI decides how they look. Without a Docker engine,
 * the simulator runs as a local process so the main job works on any machine.
 */

import { ConflictError, EnvironmentError, FitError } from '../core/errors.js';
import { kvBytesPerToken } from '../models/fit.js';
import { CALIBRATION_LOG_LINES, calibrateFromPlan, fetchMetricsText, imageDigestOf, tailLines } from './calibrate.js';
import { lastContainerLogLines } from './container-logs.js';
import { daemonStatus } from '../daemon/lifecycle.js';
import { checkCacheWritable, checkDiskForWeights } from './cache-checks.js';
import { isPortFree, upContainer, type EngineProgress } from './container.js';
import { removeReplicasFrom } from './containers.js';
import { createDockerClient, probeDocker } from './docker.js';
import { engineKeyFile, newEngineKey, readEngineKey, writeEngineKey } from './engine-key.js';
import { ensureDaemonInFront, type DaemonFront } from './front.js';
import { engineKindInfo, type EngineKind, type StageTimeouts } from './kinds.js';
import { upLocalProcess } from './local.js';
import { modelCacheDir } from './model-files.js';
import { checkOfflineReady } from './offline.js';
import { engineModelOf, planEngine, type EnginePlan, type PlanDeps, type PlanRequest } from './plan.js';
import { EngineDiedError } from './readiness.js';
import { buildLocalSimImage, isDefaultSimImage } from './sim-image.js';
import { formatGpuSelection, instanceIdFor, type EngineSpecInput } from './spec.js';

export type { EngineConfig } from './plan.js';
export { engineModelOf, planEngine, resolveKind, type EnginePlan } from './plan.js';
export { checkDiskForWeights, hfRepoCacheDir } from './cache-checks.js';

export type UpProgress = EngineProgress | { stage: 'plan'; message: string };

export interface UpRequest extends PlanRequest {
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

export type UpDeps = PlanDeps;

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
  /** Where the engine's API key is (0600): send it as Authorization: Bearer to call the engine directly. */
  apiKeyFile: string;
  /** The chat daemon in front of the engine, when asked for. */
  daemon: DaemonFront | null;
  /** single, replicas (one engine per GPU) or tensor-parallel; the fields above describe the first engine. */
  placement: EnginePlan['placement'];
  /** Every engine started (or reused), the first included. */
  engines: EngineSummary[];
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

export async function up(request: UpRequest, deps: UpDeps = {}): Promise<UpResult> {
  await checkDaemonPort(request);
  const engine = await upEngine(request, deps);
  if (!request.daemon) return { ...withoutKey(engine), daemon: null };
  request.onProgress?.({ stage: 'note', message: `engine serving at ${engine.baseUrl}; starting the chat daemon in front of it` });
  // Replicas are the daemon's upstreams, with session-sticky routing (front.ts).
  const upstreams = (engine.engines ?? [engine]).map((e) => e.baseUrl.replace(/\/v1$/, ''));
  const daemon = await ensureDaemonInFront(request.paths, upstreams, request.env ?? process.env, engine.apiKey);
  request.onProgress?.({
    stage: 'note',
    message: `chat daemon ${daemon.reused ? 'already running' : 'started'} at ${daemon.url} (pid ${daemon.pid})`,
  });
  return { ...withoutKey(engine), daemon };
}

/** The key itself stays inside: results are printed (--json), the file is named instead. */
function withoutKey(engine: EngineUp): Omit<UpResult, 'daemon'> {
  const { apiKey: _key, placement, engines, ...rest } = engine;
  return { ...rest, placement: placement ?? 'single', engines: engines ?? [] };
}

type EngineUp = Omit<UpResult, 'daemon' | 'placement' | 'engines'> & {
  apiKey: string | null;
  placement?: EnginePlan['placement'];
  engines?: EngineSummary[];
};

/** One engine of an up, as the result lists it. */
export interface EngineSummary {
  baseUrl: string;
  port: number;
  gpus: string;
  gpuNames: string[];
  containerName: string | null;
  pid: number | null;
  reused: boolean;
  readyInMs: number;
}

/** Sequences planned after vLLM named the longest context that fits: its pool holds that context about 4 times at a quarter full. */
const RETRY_SEQUENCES = 4;

/**
 * Everything up to a serving engine, without the daemon. When vLLM refuses because its KV cache cannot hold
 * the planned context and names the longest that fits, the start is tried once more with that context
 * (saying so), unless --context was given: then that is refused with the figure.
 */
export async function upEngine(request: UpRequest, deps: UpDeps = {}): Promise<EngineUp> {
  const plan = await planEngine(request, deps);
  try {
    return await startPlanned(request, deps, plan);
  } catch (err) {
    const fits = err instanceof EngineDiedError && err.diagnosis?.kind === 'kv-cache-too-small' ? (err.diagnosis.maxContext ?? null) : null;
    if (fits === null || !(err instanceof EngineDiedError)) throw err;
    calibrate(request, plan, { image: 'refused', imageDigest: null }, err.lines, null);
    if (request.engine.context !== undefined) {
      throw new FitError(
        `--context ${request.engine.context} does not fit: vLLM says the KV cache of ${plan.model.id} holds at most ${fits} tokens here`,
        { next: `Use --context ${fits} or less (or leave --context out and up takes it), or a smaller --model.`, details: err.details },
      );
    }
    if (fits < 1 || fits >= plan.maxModelLen) throw err;
    request.onProgress?.({
      stage: 'note',
      message: `vLLM says the KV cache holds at most ${fits} tokens of context here (the plan had ${plan.maxModelLen}); starting again once with --context ${fits}`,
    });
    return startPlanned(request, deps, { ...plan, maxModelLen: fits, maxNumSeqs: Math.max(1, Math.min(plan.maxNumSeqs, RETRY_SEQUENCES)) });
  }
}

/** Keeps what the engine said about memory for the next plan (calibrate.ts); GPU engines only. */
function calibrate(
  request: UpRequest,
  plan: EnginePlan,
  where: { image: string; imageDigest: string | null },
  lines: readonly string[],
  metrics: string | null,
): void {
  const note = (message: string) => request.onProgress?.({ stage: 'note', message });
  calibrateFromPlan(
    plan,
    { stateDir: request.paths.stateDir, gpuMemoryUtilization: request.engine.gpuMemoryUtilization, note },
    where,
    lines,
    metrics,
  );
}

/**
 * Starts every engine of the plan. Replicas share one key (engine-key.ts holds one; see docs/engine.md): the
 * first engine makes it when it is new, the others are started or reused with it. Replica slots beyond the
 * plan (an earlier up with more GPUs) are removed.
 */
async function startPlanned(request: UpRequest, deps: UpDeps, plan: EnginePlan): Promise<EngineUp> {
  const first = await startOne(request, deps, plan, 0, undefined);
  const summary = (e: EngineUp): EngineSummary => ({
    baseUrl: e.baseUrl,
    port: e.port,
    gpus: e.gpus,
    gpuNames: e.gpuNames,
    containerName: e.containerName,
    pid: e.pid,
    reused: e.reused,
    readyInMs: e.readyInMs,
  });
  const docker = deps.docker ?? createDockerClient(request.env ?? process.env);
  // Replica slots of an earlier up with more GPUs than this plan uses go (a single engine is slot 0).
  if (first.mode === 'container') await removeReplicasFrom(docker, instanceIdFor(request.paths.home), plan.engines.length);
  if (plan.engines.length === 1 || first.mode === 'process') {
    if (plan.engines.length > 1) {
      request.onProgress?.({
        stage: 'note',
        message: `a local process runs one engine: only the first of ${plan.engines.length} replicas was started (Docker runs them all)`,
      });
    }
    return { ...first, placement: plan.engines.length > 1 ? 'single' : plan.placement, engines: [summary(first)] };
  }
  const all = [first];
  for (let i = 1; i < plan.engines.length; i++) all.push(await startOne(request, deps, plan, i, first.apiKey ?? undefined));
  return { ...first, placement: plan.placement, engines: all.map(summary) };
}

/** One engine of the plan (index `replica`); `sharedKey`: the key the first engine of this up runs with. */
async function startOne(
  request: UpRequest,
  deps: UpDeps,
  fullPlan: EnginePlan,
  replica: number,
  sharedKey: string | undefined,
): Promise<EngineUp> {
  const placed = fullPlan.engines[replica]!;
  const plan = { ...fullPlan, gpus: placed.gpus, chosenGpus: placed.chosenGpus, tensorParallel: placed.tensorParallel };
  const env = request.env ?? process.env;
  const image = request.engine.image ?? engineKindInfo(plan.kind).defaultImage;
  const gpuNames = plan.chosenGpus.map((g) => `${g.index}: ${g.name}`);
  for (const message of plan.notes ?? []) request.onProgress?.({ stage: 'note', message });
  request.onProgress?.({
    stage: 'plan',
    message: `${fullPlan.engines.length > 1 ? `engine ${replica + 1} of ${fullPlan.engines.length} (${fullPlan.placement}): ` : ''}${plan.kind} engine, model ${plan.model.id} (context ${plan.maxModelLen}, ${plan.maxNumSeqs} sequences), ${plan.cpu ? `${plan.cpu.threads} CPU thread(s), file ${plan.cpu.hostModelPath}` : `GPUs: ${gpuNames.join(', ') || 'none'}`}${plan.kvCache ? `, KV cache ${plan.kvCache.tokens} tokens (${plan.kvCache.source === 'measured' ? `measured by vLLM before; the estimate says ${plan.kvCache.estimatedTokens}` : 'estimated'})` : ''}`,
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
    port: placed.port,
    ...(fullPlan.engines.length > 1 ? { replica } : {}),
    hfCacheDir: modelCacheDir({ engine: request.engine }, env),
    offline: request.engine.offline,
    hfToken: env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN || undefined,
    extraEnv: request.extraEnv,
    instance: instanceIdFor(request.paths.home),
    cpu: plan.cpu,
    ...(plan.kind === 'sim'
      ? {
          simulated: {
            weightsBytes: plan.model.weightsBytes,
            kvBytesPerToken: kvBytesPerToken(plan.model),
            ...(plan.chosenGpus[0]?.memoryTotalMiB != null
              ? { gpuMemoryMiB: plan.chosenGpus[0].memoryTotalMiB, gpuFreeMiB: plan.chosenGpus[0].memoryFreeMiB }
              : {}),
          },
        }
      : {}),
    // The key of the engine that runs now, if any: that engine is reused only with it.
    apiKey: sharedKey ?? readEngineKey(request.paths.stateDir) ?? undefined,
    runAs: `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`,
  };
  const apiKeyFile = engineKeyFile(request.paths.stateDir);
  // Only the first engine of an up makes a new key; the others get the one it runs with.
  const newApiKey =
    sharedKey === undefined
      ? () => {
          const key = newEngineKey();
          writeEngineKey(request.paths.stateDir, key);
          return key;
        }
      : undefined;
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
  if (engineKindInfo(plan.kind).mountsHfCache && !request.engine.offline) {
    await checkDiskForWeights(input.hfCacheDir, plan.model);
    checkCacheWritable(input.hfCacheDir, plan.model.hfRepo ?? plan.model.id, input.runAs!);
  }
  const docker = deps.docker ?? createDockerClient(env);
  const probe = await probeDocker(docker, env);
  const runLocal = async (why: string): Promise<EngineUp> => {
    request.onProgress?.({
      stage: 'note',
      message: `${why}: running the ${plan.kind === 'cpu' ? 'cpu engine' : 'simulator'} as a local process`,
    });
    const local = await upLocalProcess(request.paths.stateDir, input, {
      newApiKey,
      env,
      timeouts,
      signal: request.signal,
      onProgress: (event) => request.onProgress?.({ stage: 'readiness', ...event }),
      onNote: (message) => request.onProgress?.({ stage: 'note', message }),
    });
    calibrate(
      request,
      plan,
      { image: `local ${plan.kind} process`, imageDigest: null },
      tailLines(local.logFile),
      await fetchMetricsText(local.baseUrl),
    );
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
      apiKey: local.apiKey,
      apiKeyFile,
    };
  };
  if (!probe.reachable) {
    // The simulator plays the chosen GPUs' memory as a local process too: nothing asks Docker for a GPU.
    if (plan.kind === 'sim' || plan.kind === 'cpu') return runLocal(`no Docker engine (${probe.detail})`);
    throw new EnvironmentError(`Docker Engine is not usable: ${probe.detail}`, {
      next: `${probe.fix ?? 'Start dockerd.'} Without Docker: cs-llm up --engine cpu, or --engine sim (a local process).`,
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
    newApiKey,
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
  if (plan.chosenGpus.length > 0) {
    const lines = await lastContainerLogLines(docker, result.containerId, CALIBRATION_LOG_LINES).catch(() => []);
    calibrate(request, plan, { image, imageDigest: await imageDigestOf(docker, image) }, lines, await fetchMetricsText(result.baseUrl));
  }
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
    apiKey: result.apiKey,
    apiKeyFile,
  };
}
