/*
 * The engine container's start through dockerode: reuse, replace, pull, create, start, readiness, and
 * clean-up on failure. Status, removal and logs of our containers: containers.ts and container-logs.ts.
 */

import { mkdirSync } from 'node:fs';
import { isPortFree } from '../core/ports.js';
import { PassThrough } from 'node:stream';
import type Docker from 'dockerode';
import { ConflictError, EngineError, EnvironmentError, isCsLlmError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { diagnoseDockerError, dockerErrorMessage, splitLogLines } from './diagnose.js';
import { engineKindInfo, type EngineKind, type StageTimeouts } from './kinds.js';
import { completeOneToken, fetchServedModels, probeHealth } from './probes.js';
import { ensureImage, imageExists, type PullPolicy, type PullProgress } from './pull.js';
import { lastContainerLogLines } from './container-logs.js';
import { listEngineContainers, removeContainer } from './containers.js';
import { engineKeyId } from './engine-key.js';
import { ensureEngineNetwork } from './network.js';
import { probeGpuRuntime } from './gpu-preflight.js';
import { waitForReady, type ReadinessEvent, type ReadinessTarget, type TargetState } from './readiness.js';
import { buildEngineSpec, LABEL, type EngineSpecInput } from './spec.js';

const log = createLogger('engine');

export type EngineProgress =
  { stage: 'pulling'; pull: PullProgress } | ({ stage: 'readiness' } & ReadinessEvent) | { stage: 'note'; message: string };

export interface ContainerUpOptions {
  pullPolicy: PullPolicy;
  timeouts?: Partial<StageTimeouts>;
  onProgress?: (event: EngineProgress) => void;
  signal?: AbortSignal;
  /** Called when a pull fails before giving up, e.g. to build the simulator image locally instead. */
  onImageUnavailable?: (image: string, err: Error) => Promise<boolean>;
  /**
   * A fresh API key for a new engine (written where the daemon finds it); a running engine is reused only when
   * it has input.apiKey, the key on file. Without it a new engine gets input.apiKey.
   */
  newApiKey?: () => string;
}

export interface EngineEndpoint {
  mode: 'container' | 'process';
  /** The OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1 */
  baseUrl: string;
  port: number;
  servedName: string;
}

export interface ContainerUpResult extends EngineEndpoint {
  mode: 'container';
  containerId: string;
  containerName: string;
  image: string;
  configHash: string;
  /** The same configuration was already running and answers: nothing was created. */
  reused: boolean;
  /** An engine with another configuration was removed to make room. */
  replaced: boolean;
  pulled: boolean;
  readyInMs: number;
  /** The key the engine requires on /v1/*, or null for an engine started without one. */
  apiKey: string | null;
}

export { isPortFree };

/** A readiness target for a started container: inspect, followed logs, HTTP probes on the published port. */
async function containerTarget(
  docker: Docker,
  id: string,
  baseUrl: string,
  servedName: string,
  apiKey: string | undefined,
): Promise<ReadinessTarget & { close(): void }> {
  const container = docker.getContainer(id);
  const pending: string[] = [];
  let partial = '';
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8');
    const cut = Math.max(text.lastIndexOf('\n'), text.lastIndexOf('\r'));
    partial = cut >= 0 ? text.slice(cut + 1) : text;
    if (cut >= 0) pending.push(...splitLogLines(text.slice(0, cut + 1)));
  });
  const stream = (await container.logs({ follow: true, stdout: true, stderr: true })) as unknown as NodeJS.ReadableStream & {
    destroy(): void;
  };
  docker.modem.demuxStream(stream, sink, sink);
  stream.on('error', () => undefined);
  return {
    async inspect(): Promise<TargetState> {
      const info = await container.inspect();
      return {
        running: info.State.Running && !info.State.Restarting,
        restartCount: info.RestartCount,
        exitCode: info.State.Running ? null : info.State.ExitCode,
        status: info.State.Status,
        oomKilled: info.State.OOMKilled,
      };
    },
    drainLogLines: () => pending.splice(0, pending.length),
    lastLogLines: (n) => lastContainerLogLines(docker, id, n),
    health: () => probeHealth(baseUrl),
    servedModels: () => fetchServedModels(baseUrl, apiKey),
    completeOneToken: () => completeOneToken(baseUrl, servedName, apiKey),
    close: () => {
      stream.destroy();
      sink.destroy();
    },
  };
}

/**
 * An error from a Docker Engine call that is not one of ours: a lost connection (dockerd stopped or
 * restarted mid-way) is the host's problem; anything else is the engine refusing what we asked.
 */
export function dockerFailure(err: unknown, action: string): Error {
  if (isCsLlmError(err)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  const message = dockerErrorMessage(err);
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(message)) {
    return new EnvironmentError(`lost the Docker Engine while ${action}: ${message}`, {
      next: 'Check that dockerd is running (docker info) and run the command again.',
      cause: err,
    });
  }
  return new EngineError(`the Docker Engine failed while ${action}: ${message}`, {
    next: 'Check dockerd (docker info, its log) and run the command again; --verbose shows more.',
    cause: err,
  });
}

/** Docker refused to start the container: explain it (no NVIDIA runtime, port in use...) in plain words. */
export function startFailure(err: unknown): Error {
  if (isCsLlmError(err)) return err;
  const message = dockerErrorMessage(err);
  const diagnosis = diagnoseDockerError(err);
  const text = `cannot start the engine container: ${diagnosis ? diagnosis.summary : message}`;
  const options = { next: diagnosis?.fix ?? 'Run cs-llm doctor, or check dockerd with docker info.', details: [message], cause: err };
  if (diagnosis?.kind === 'port-in-use') return new ConflictError(text, options);
  return diagnosis?.environment === false ? new EngineError(text, options) : new EnvironmentError(text, options);
}

/** The container readiness waits for. */
interface Started {
  id: string;
  name: string;
  kind: EngineKind;
  port: number;
  servedName: string;
  apiKey: string | undefined;
}

/** Run the readiness state machine on a container; on failure remove it, then rethrow. */
async function awaitReadiness(docker: Docker, started: Started, options: ContainerUpOptions, removeOnFailure: boolean): Promise<number> {
  const { id, name } = started;
  const target = await containerTarget(docker, id, `http://127.0.0.1:${started.port}`, started.servedName, started.apiKey);
  try {
    const result = await waitForReady(target, {
      servedName: started.servedName,
      timeouts: { ...engineKindInfo(started.kind).timeouts, ...options.timeouts },
      label: `engine container ${name}`,
      signal: options.signal,
      onProgress: (event) => options.onProgress?.({ stage: 'readiness', ...event }),
    });
    return result.elapsedMs;
  } catch (err) {
    if (removeOnFailure) {
      log('readiness failed, removing %s', name);
      await removeContainer(docker, id, false).catch((e: unknown) => log('clean-up of %s failed: %s', name, (e as Error).message));
    }
    throw err;
  } finally {
    target.close();
  }
}

export async function upContainer(docker: Docker, input: EngineSpecInput, options: ContainerUpOptions): Promise<ContainerUpResult> {
  try {
    return await upContainerUnwrapped(docker, input, options);
  } catch (err) {
    throw dockerFailure(err, 'starting the engine');
  }
}

async function upContainerUnwrapped(docker: Docker, input: EngineSpecInput, options: ContainerUpOptions): Promise<ContainerUpResult> {
  const spec = buildEngineSpec(input);
  const info = engineKindInfo(input.kind);
  const endpoint = {
    mode: 'container' as const,
    baseUrl: `http://127.0.0.1:${input.port}/v1`,
    port: input.port,
    servedName: input.model.servedName,
  };
  // Our engines in the same slot (another replica of this installation is not this one's to reuse or replace).
  const slot = String(input.replica ?? 0);
  const existing = (await listEngineContainers(docker, input.instance)).filter((c) => (c.Labels[LABEL.replica] ?? '0') === slot);

  // Reused only with the key on file: the daemon must be able to call it, and nothing else can.
  const keyId = input.apiKey ? engineKeyId(input.apiKey) : undefined;
  const same = existing.find(
    (c) =>
      keyId !== undefined && c.Labels[LABEL.configHash] === spec.configHash && c.State === 'running' && c.Labels[LABEL.keyId] === keyId,
  );
  const started = { kind: input.kind, port: input.port, servedName: input.model.servedName };
  if (same) {
    options.onProgress?.({ stage: 'note', message: `reusing the running engine ${spec.name} (same configuration)` });
    try {
      const readyInMs = await awaitReadiness(docker, { ...started, id: same.Id, name: spec.name, apiKey: input.apiKey }, options, false);
      return {
        ...endpoint,
        containerId: same.Id,
        containerName: spec.name,
        image: input.image,
        configHash: spec.configHash,
        reused: true,
        replaced: false,
        pulled: false,
        readyInMs,
        apiKey: input.apiKey ?? null,
      };
    } catch (err) {
      // It is ours and broken: fall through and replace it with a fresh one.
      options.onProgress?.({
        stage: 'note',
        message: `the running engine does not answer (${(err as Error).message.split('\n')[0]}); replacing it`,
      });
    }
  }

  // The port must be free unless one of ours (about to be replaced) holds it.
  const oursOnPort = existing.some((c) => c.Labels[LABEL.port] === String(input.port) && c.State === 'running');
  if (!oursOnPort && !(await isPortFree(input.port))) {
    throw new ConflictError(`port ${input.port} on 127.0.0.1 is already in use, so the engine cannot listen there`, {
      next: `Pick another port with --port, or stop what listens on ${input.port} (ss -ltnp | grep :${input.port}).`,
    });
  }

  // Before a pull that can take minutes: can Docker hand out GPUs at all? (About a second.)
  if (input.gpus.mode !== 'none' && !(await imageExists(docker, input.image))) {
    const gpu = await probeGpuRuntime(docker, input.gpus, input.instance);
    if (gpu.verdict === 'missing') {
      throw new EnvironmentError(`cannot start the engine container: ${gpu.diagnosis.summary}`, {
        next: gpu.diagnosis.fix,
        details: [gpu.message],
      });
    }
  }

  let pulled = false;
  try {
    pulled = (
      await ensureImage(docker, input.image, {
        policy: options.pullPolicy,
        signal: options.signal,
        onProgress: (pull) => options.onProgress?.({ stage: 'pulling', pull }),
      })
    ).pulled;
  } catch (err) {
    const recovered = options.onImageUnavailable ? await options.onImageUnavailable(input.image, err as Error) : false;
    if (!recovered) throw err;
  }

  for (const old of existing) {
    options.onProgress?.({
      stage: 'note',
      message: `removing the previous engine ${old.Names[0]?.replace(/^\//, '') ?? old.Id.slice(0, 12)} (${old.State}, ${old.Labels[LABEL.configHash] !== spec.configHash ? 'other configuration' : old.State === 'running' ? 'not started with the key on file' : 'not running'})`,
    });
    await removeContainer(docker, old.Id, old.State === 'running');
  }
  if (info.mountsHfCache) mkdirSync(input.hfCacheDir, { recursive: true });
  const network = await ensureEngineNetwork(docker, input.network);
  // A new engine, a new key (the old one dies with the engine it belonged to).
  const apiKey = options.newApiKey ? options.newApiKey() : input.apiKey;
  const final = buildEngineSpec({ ...input, apiKey, network });

  let container: Docker.Container;
  try {
    container = await docker.createContainer(final.options);
  } catch (err) {
    throw startFailure(err);
  }
  try {
    await container.start();
  } catch (err) {
    await removeContainer(docker, container.id, false).catch(() => undefined);
    throw startFailure(err);
  }
  log('started %s (%s)', spec.name, container.id.slice(0, 12));
  const readyInMs = await awaitReadiness(docker, { ...started, id: container.id, name: spec.name, apiKey }, options, true);
  return {
    ...endpoint,
    containerId: container.id,
    containerName: spec.name,
    image: input.image,
    configHash: spec.configHash,
    reused: false,
    replaced: existing.length > 0,
    pulled,
    readyInMs,
    apiKey: apiKey ?? null,
  };
}
