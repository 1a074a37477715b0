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
  /** Mount the host's Hugging Face cache (the engine downloads weights into it). */
  mountsHfCache: boolean;
  timeouts: StageTimeouts;
}

/** vLLM's OpenAI-compatible server, pinned so that a given cs-llm version always runs the same engine. */
export const VLLM_IMAGE = 'vllm/vllm-openai:v0.10.1.1';

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
    timeouts: { startingMs: 60_000, loadingMs: 5 * 60_000, servingMs: 60_000 },
  },
  cpu: {
    kind: 'cpu',
    defaultImage: `127.0.0.1:5000/cs-llm/cpu:${VERSION}`,
    containerPort: 8000,
    defaultGpus: 'none',
    needsGpu: false,
    mountsHfCache: false,
    timeouts: { startingMs: 2 * 60_000, loadingMs: 10 * 60_000, servingMs: 2 * 60_000 },
  },
};

export function engineKindInfo(kind: EngineKind): EngineKindInfo {
  return ENGINE_KINDS[kind];
}
