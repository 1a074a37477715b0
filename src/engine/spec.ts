/*
 * The engine container as data: model + GPU choice + port + options in, dockerode create options out.
 * Pure, so the exact arguments, bindings and labels are unit-tested without a Docker engine.
 */

import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { UsageError } from '../core/errors.js';
import { engineKindInfo, type EngineKind } from './kinds.js';
import { cpuEngineArgs, cpuHostConfig, type CpuPlan } from './cpu-spec.js';
import { engineKeyId } from './engine-key.js';
import { LABEL } from './labels.js';
import { ENGINE_NETWORK } from './network.js';

/** What the spec needs from a catalog entry (src/models); structurally compatible with it. */
export interface EngineModel {
  id: string;
  hfRepo: string;
  servedName: string;
  toolCallParser?: string | null;
  chatTemplate?: string | null;
  engineArgs?: readonly string[];
  /** The repository commit to load (vLLM's --revision), so the weights are the ones the catalog's figures describe. */
  revision?: string;
}

/** What the simulator needs to spend memory like vLLM (src/sim/memory.ts): the model's figures, and the GPU it plays. */
export interface SimulatedMemory {
  weightsBytes: number;
  kvBytesPerToken: number;
  /** The chosen GPU's memory and free memory (nvidia-smi's figures); absent without a GPU. */
  gpuMemoryMiB?: number;
  gpuFreeMiB?: number | null;
}

export type GpuSelection = { mode: 'all' } | { mode: 'none' } | { mode: 'ids'; ids: string[] };

export interface EngineSpecInput {
  kind: EngineKind;
  image: string;
  model: EngineModel;
  maxModelLen: number;
  maxNumSeqs: number;
  gpuMemoryUtilization: number;
  gpus: GpuSelection;
  /** GPUs one model is split across (vLLM's --tensor-parallel-size); 1 or unset: one GPU. */
  tensorParallel?: number;
  /** Host port, published on 127.0.0.1 only. */
  port: number;
  /** Host directory mounted as the container's Hugging Face cache (engines that download weights). */
  hfCacheDir: string;
  offline: boolean;
  /** Passed into the container of an engine that downloads (vLLM) when set; never part of labels, hashes or logs. */
  hfToken?: string;
  /** The engine's API key (engine-key.ts), as VLLM_API_KEY; never in the hash, in the labels as a fingerprint. */
  apiKey?: string;
  /** "uid:gid" of the user who runs `up`: vLLM runs as them, so its files in the bind-mounted cache are theirs. */
  runAs?: string;
  /** The Docker network the engine joins (network.ts); default the engines' own. */
  network?: string;
  /** Extra environment for the engine (e.g. VLLM_* tuning, or the simulator's SIM_* knobs). */
  extraEnv?: Record<string, string>;
  /** Identifies this cs-llm installation (its CS_LLM_HOME), so separate homes never touch each other's engine. */
  instance: string;
  /** Which engine of a placement with several (replicas: one per GPU); unset or 0: the first. */
  replica?: number;
  /** The cpu engine: its GGUF file (mounted read-only) and threads (= the CPU quota). */
  cpu?: CpuPlan;
  /** The simulator: the model's memory figures and the GPU it plays (SIM_* variables). */
  simulated?: SimulatedMemory;
}

export interface EngineSpec {
  name: string;
  configHash: string;
  options: Docker.ContainerCreateOptions;
}

export { LABEL };

/** Outside /root, which a non-root user cannot enter; HF_HOME points there. */
export const CONTAINER_HF_CACHE = '/cache/huggingface';
/** HOME for vLLM as a user the image does not know: its caches (~/.cache/vllm, ~/.triton) need a writable one. */
export const CONTAINER_HOME = '/tmp';
export const RESTART_RETRIES = 2;

/** "all" | "none" | "0,1" -> a GpuSelection; anything else is a usage error naming the flag. */
export function parseGpuSelection(value: string): GpuSelection {
  const text = value.trim().toLowerCase();
  if (text === 'all') return { mode: 'all' };
  if (text === 'none' || text === '') return { mode: 'none' };
  const ids = text.split(',').map((s) => s.trim());
  if (ids.every((id) => /^\d+$/.test(id)) && new Set(ids).size === ids.length) return { mode: 'ids', ids };
  throw new UsageError(`--gpus must be "all", "none" or GPU indexes such as "0" or "0,1", got "${value}"`, {
    next: 'Run cs-llm gpus (or nvidia-smi -L) to see the GPU indexes.',
  });
}

export function formatGpuSelection(gpus: GpuSelection): string {
  return gpus.mode === 'ids' ? gpus.ids.join(',') : gpus.mode;
}

/** vLLM's command line. The simulator accepts the same flags and ignores the ones it has no use for. */
export function engineArgs(input: EngineSpecInput): string[] {
  const port = String(engineKindInfo(input.kind).containerPort);
  if (input.kind === 'cpu' && input.cpu) {
    return cpuEngineArgs({
      port: Number(port),
      servedName: input.model.servedName,
      maxModelLen: input.maxModelLen,
      maxNumSeqs: input.maxNumSeqs,
      cpu: input.cpu,
    });
  }
  const args = [
    '--host',
    '0.0.0.0',
    '--port',
    port,
    '--model',
    input.model.hfRepo,
    '--served-model-name',
    input.model.servedName,
    '--max-model-len',
    String(input.maxModelLen),
    '--max-num-seqs',
    String(input.maxNumSeqs),
    '--gpu-memory-utilization',
    String(input.gpuMemoryUtilization),
  ];
  if (input.model.revision) args.push('--revision', input.model.revision);
  if (input.tensorParallel && input.tensorParallel > 1) args.push('--tensor-parallel-size', String(input.tensorParallel));
  if (input.model.toolCallParser) {
    args.push('--enable-auto-tool-choice', '--tool-call-parser', input.model.toolCallParser);
  }
  if (input.model.chatTemplate) args.push('--chat-template', input.model.chatTemplate);
  // Never force --quantization awq: vLLM picks awq_marlin on its own, and forcing awq costs ~5x throughput.
  const extra = (input.model.engineArgs ?? []).filter((a, i, all) => {
    if (a === '--quantization' && all[i + 1] === 'awq') return false;
    if (a === 'awq' && all[i - 1] === '--quantization') return false;
    return a !== '--quantization=awq';
  });
  args.push(...extra);
  return args;
}

function engineEnv(input: EngineSpecInput, forHash: boolean): string[] {
  const env: string[] = [];
  const downloads = engineKindInfo(input.kind).mountsHfCache;
  // Not in the hash at all: which key an engine has is the key-id label's business (a reused engine keeps its key).
  if (input.apiKey && !forHash) env.push(`VLLM_API_KEY=${input.apiKey}`);
  // Only the engine that downloads gets the token; the simulator and the CPU engine never call the Hub.
  if (input.hfToken && downloads) env.push(forHash ? 'HF_TOKEN=<set>' : `HF_TOKEN=${input.hfToken}`);
  if (downloads) {
    // USER: PyTorch's cache paths call getpass.getuser(), which fails for a uid the image's /etc/passwd lacks.
    env.push(`HOME=${CONTAINER_HOME}`, `HF_HOME=${CONTAINER_HF_CACHE}`, 'USER=cs-llm');
  }
  if (input.offline) env.push('HF_HUB_OFFLINE=1', 'TRANSFORMERS_OFFLINE=1');
  if (input.kind === 'sim' && input.simulated) {
    // One value per name (a process may read the first of two): an --engine-env entry replaces ours.
    const given = new Set(Object.keys(input.extraEnv ?? {}));
    env.push(...simulatorMemoryEnv(input.simulated).filter((pair) => !given.has(pair.slice(0, pair.indexOf('=')))));
  }
  for (const [key, value] of Object.entries(input.extraEnv ?? {}).sort(([a], [b]) => a.localeCompare(b))) {
    // The key is up's to give (the daemon holds the same one); a second VLLM_API_KEY would shadow it.
    if (key === 'VLLM_API_KEY' && input.apiKey) continue;
    env.push(`${key}=${value}`);
  }
  return env;
}

/** The simulator's memory knobs (docs/sim.md "GPU memory"); an --engine-env entry of the same name replaces one. */
export function simulatorMemoryEnv(sim: SimulatedMemory): string[] {
  const env = [`SIM_WEIGHTS_BYTES=${sim.weightsBytes}`, `SIM_KV_BYTES_PER_TOKEN=${sim.kvBytesPerToken}`];
  if (sim.gpuMemoryMiB !== undefined) env.push(`SIM_GPU_MEMORY_MIB=${sim.gpuMemoryMiB}`);
  if (sim.gpuMemoryMiB !== undefined && sim.gpuFreeMiB !== undefined && sim.gpuFreeMiB !== null)
    env.push(`SIM_GPU_FREE_MIB=${sim.gpuFreeMiB}`);
  return env;
}

/** vLLM as the operator (root only when `up` runs as root); the others as their fixed non-root user. */
function containerUser(input: EngineSpecInput): string {
  const user = engineKindInfo(input.kind).user;
  return user === 'operator' ? (input.runAs ?? '0:0') : user;
}

function deviceRequests(gpus: GpuSelection): Docker.DeviceRequest[] | undefined {
  if (gpus.mode === 'none') return undefined;
  if (gpus.mode === 'all') return [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }];
  return [{ Driver: 'nvidia', DeviceIDs: [...gpus.ids], Capabilities: [['gpu']] }];
}

/** A short stable hash of everything that defines the engine (the token only as "set or not", the key not at all). */
export function configHashOf(input: EngineSpecInput): string {
  const info = engineKindInfo(input.kind);
  const canonical = JSON.stringify({
    kind: input.kind,
    image: input.image,
    args: engineArgs(input),
    env: engineEnv(input, true),
    gpus: formatGpuSelection(input.gpus),
    port: input.port,
    hfCache: info.mountsHfCache ? input.hfCacheDir : null,
    user: containerUser(input),
    cpuModel: input.cpu?.hostModelPath,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** The first engine keeps the plain name; further replicas get their number. */
export function containerNameFor(instance: string, replica = 0): string {
  return replica > 0 ? `cs-llm-engine-${instance}-${replica}` : `cs-llm-engine-${instance}`;
}

/** The short id of an installation, from its CS_LLM_HOME path. */
export function instanceIdFor(home: string): string {
  return createHash('sha256').update(home).digest('hex').slice(0, 10);
}

export function buildEngineSpec(input: EngineSpecInput): EngineSpec {
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) {
    throw new UsageError(`--port must be between 1 and 65535, got ${input.port}`);
  }
  const info = engineKindInfo(input.kind);
  const containerPort = `${info.containerPort}/tcp`;
  const configHash = configHashOf(input);
  const devices = deviceRequests(input.gpus);
  const hostConfig: Docker.HostConfig = {
    // Its own IPC namespace: with the host's, the container reads and writes the host's /dev/shm.
    IpcMode: 'private',
    // Loopback only: vLLM's /metrics is not protected by its API key, and the daemon is the public face.
    PortBindings: { [containerPort]: [{ HostIp: '127.0.0.1', HostPort: String(input.port) }] },
    // Not Docker's default bridge, where every other container reaches the engine (network.ts).
    NetworkMode: input.network ?? ENGINE_NETWORK,
    CapDrop: ['ALL'],
    SecurityOpt: ['no-new-privileges'],
    PidsLimit: info.pidsLimit,
    // A small retry count: an init failure under unless-stopped can restart for ever and stall the host.
    RestartPolicy: { Name: 'on-failure', MaximumRetryCount: RESTART_RETRIES },
  };
  if (info.shmSizeBytes !== null) hostConfig.ShmSize = info.shmSizeBytes;
  if (devices) hostConfig.DeviceRequests = devices;
  if (info.mountsHfCache) hostConfig.Binds = [`${input.hfCacheDir}:${CONTAINER_HF_CACHE}`];
  if (input.kind === 'cpu' && input.cpu) Object.assign(hostConfig, cpuHostConfig(input.cpu));
  return {
    name: containerNameFor(input.instance, input.replica),
    configHash,
    options: {
      name: containerNameFor(input.instance, input.replica),
      Image: input.image,
      User: containerUser(input),
      Cmd: engineArgs(input),
      Env: engineEnv(input, false),
      ExposedPorts: { [containerPort]: {} },
      Labels: {
        [LABEL.managed]: 'true',
        [LABEL.instance]: input.instance,
        [LABEL.engine]: input.kind,
        [LABEL.model]: input.model.id,
        [LABEL.servedName]: input.model.servedName,
        [LABEL.configHash]: configHash,
        [LABEL.port]: String(input.port),
        [LABEL.gpus]: formatGpuSelection(input.gpus),
        [LABEL.replica]: String(input.replica ?? 0),
        ...(input.apiKey ? { [LABEL.keyId]: engineKeyId(input.apiKey) } : {}),
      },
      HostConfig: hostConfig,
    },
  };
}
