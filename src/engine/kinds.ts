/*
 * Engine kinds differ only in their image, the arguments their container gets, how long each readiness
 * stage may take, and whether they need a GPU. Everything else (pull, create, readiness, diagnosis) is shared.
 */

import { VERSION } from '../core/version.js';

export type EngineKind = 'vllm' | 'sim' | 'cpu';

export interface StageTimeouts {
  /** From container start until the engine shows it is loading (a log line or an answer on /health). */
  startingMs: number;
  /** From loading until /health answers 200: weights download and load. */
  loadingMs: number;
  /** From healthy until /v1/models lists the served name and a one-token completion answers. */
  servingMs: number;
}

export interface EngineKindInfo {
  kind: EngineKind;
  defaultImage: string;
  /** The port the server listens on inside the container. */
  containerPort: number;
  /** GPUs requested when --gpus is not given. */
  defaultGpus: 'all' | 'none';
  /** The engine cannot run without a GPU. */
  needsGpu: boolean;
  /** Mount the host's Hugging Face cache (the engine downloads weights into it, and alone gets HF_TOKEN). */
  mountsHfCache: boolean;
  /** The container's user: "operator" runs it as the user who runs `up` (uid:gid); otherwise this uid:gid. */
  user: 'operator' | string;
  /** Docker's PidsLimit: tasks (processes and threads) the container may have, against a runaway or fork bomb. */
  pidsLimit: number;
  /** /dev/shm of the container's private IPC namespace; null: Docker's default (64 MiB). */
  shmSizeBytes: number | null;
  timeouts: StageTimeouts;
}

/**
 * vLLM's docs ("Using Docker", docs.vllm.ai deployment/docker.html) name --shm-size as the alternative to
 * --ipc=host: PyTorch shares data between processes through /dev/shm, above all with tensor parallelism. vLLM's
 * own multi-GPU launcher, examples/online_serving/run_cluster.sh, uses --shm-size 10.24g, which Docker reads as
 * 10.24 GiB. A tmpfs limit, not memory set aside.
 */
export const VLLM_SHM_SIZE_BYTES = Math.floor(10.24 * 1024 ** 3);

/**
 * Not measured on a GPU (none here): vLLM runs an API server, an engine core and one worker per GPU under tensor
 * parallelism, each with PyTorch, CUDA and tokenizer thread pools (tens to a few hundred threads each, more on
 * hosts with many cores). 8192 leaves a wide margin for 8 GPUs and still stops a runaway long before the host's
 * pid_max.
 */
export const VLLM_PIDS_LIMIT = 8192;
/** The simulator showed 11 tasks and the CPU engine 22 while loading (1 thread; llama.cpp adds one per thread, 16 at most). */
export const NODE_ENGINE_PIDS_LIMIT = 256;
/** The simulator and CPU images run as nobody; set again here so another --image cannot bring root back. */
export const NOBODY = '65534:65534';

/** vLLM's OpenAI-compatible server, pinned so that a given cs-llm version always runs the same engine. */
export const VLLM_IMAGE = 'vllm/vllm-openai:v0.10.1.1';
/**
 * The CUDA that image is built with (vLLM's install docs for 0.10: "pre-compiled C++ and CUDA (12.8) binaries"),
 * and the first driver branch that supports it (R570 ships CUDA 12.8): what a "driver too old" failure asks for.
 */
export const VLLM_IMAGE_CUDA = '12.8';
export const VLLM_IMAGE_MIN_DRIVER = '570';

/** The simulator image: CI pushes it to the loopback registry; `up` builds it locally when it cannot be pulled. */
export const SIM_IMAGE_DEFAULT = `127.0.0.1:5000/cs-llm/sim:${VERSION}`;

export const ENGINE_KINDS: Record<EngineKind, EngineKindInfo> = {
  vllm: {
    kind: 'vllm',
    defaultImage: VLLM_IMAGE,
    containerPort: 8000,
    defaultGpus: 'all',
    needsGpu: true,
    mountsHfCache: true,
    user: 'operator',
    pidsLimit: VLLM_PIDS_LIMIT,
    shmSizeBytes: VLLM_SHM_SIZE_BYTES,
    // Generous: a first start downloads 5-20 GB of weights, and CUDA-graph capture takes minutes on big models.
    timeouts: { startingMs: 10 * 60_000, loadingMs: 60 * 60_000, servingMs: 5 * 60_000 },
  },
  sim: {
    kind: 'sim',
    defaultImage: SIM_IMAGE_DEFAULT,
    containerPort: 8000,
    defaultGpus: 'none',
    needsGpu: false,
    mountsHfCache: false,
    user: NOBODY,
    pidsLimit: NODE_ENGINE_PIDS_LIMIT,
    shmSizeBytes: null,
    timeouts: { startingMs: 60_000, loadingMs: 5 * 60_000, servingMs: 60_000 },
  },
  cpu: {
    kind: 'cpu',
    defaultImage: `127.0.0.1:5000/cs-llm/cpu:${VERSION}`,
    containerPort: 8000,
    defaultGpus: 'none',
    needsGpu: false,
    mountsHfCache: false,
    user: NOBODY,
    pidsLimit: NODE_ENGINE_PIDS_LIMIT,
    shmSizeBytes: null,
    timeouts: { startingMs: 2 * 60_000, loadingMs: 10 * 60_000, servingMs: 2 * 60_000 },
  },
};

export function engineKindInfo(kind: EngineKind): EngineKindInfo {
  return ENGINE_KINDS[kind];
}
