import { mkdirSync } from 'node:fs';
import { isPortFree } from '../core/ports.js';
import { PassThrough, type Writable } from 'node:stream';
import type Docker from 'dockerode';
import { ConflictError, EngineError, EnvironmentError, isCsLlmError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { diagnoseDockerError, dockerErrorMessage, splitLogLines } from './diagnose.js';
import { engineKindInfo, type EngineKind, type StageTimeouts } from './kinds.js';
import { completeOneToken, fetchServedModels, probeHealth } from './probes.js';
import { ensureImage, imageExists, isNotFound, type PullPolicy, type PullProgress } from './pull.js';
import { probeGpuRuntime } from './gpu-preflight.js';
import { waitForReady, type ReadinessEvent, type ReadinessTarget, type TargetState } from './readiness.js';
import { buildEngineSpec, LABEL, type EngineSpecInput } from './spec.js';

/**
 * The engine container's lifecycle through dockerode: up (reuse, replace, pull, create, start, readiness,
 * clean-up on failure), down, status and logs. Our containers are found by label, never by name guessing.
 */
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
}

export { isPortFree };

export async function listEngineContainers(docker: Docker, instance?: string): Promise<Docker.ContainerInfo[]> {
  const labels = [`${LABEL.managed}=true`];
  if (instance) labels.push(`${LABEL.instance}=${instance}`);
  return docker.listContainers({ all: true, filters: { label: labels } });
}

async function removeContainer(docker: Docker, id: string, stopFirst: boolean): Promise<void> {
  const container = docker.getContainer(id);
  try {
    // A graceful stop lets vLLM release GPU memory cleanly; force-remove is the backstop.
    if (stopFirst) await container.stop({ t: 10 }).catch(() => undefined);
    await container.remove({ force: true, v: true });
  } catch (err) {
    if (!isNotFound(err) && !/removal of container .* is already in progress/i.test(dockerErrorMessage(err))) throw err;
  }
}

/** Docker multiplexes stdout/stderr in non-TTY log output: 8-byte header (stream, 0, 0, 0, size BE) + payload. */
export function demuxLogBuffer(buffer: Buffer): string {
  let out = '';
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    out += buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
  }
  // Not multiplexed after all (a TTY container): the raw text.
  if (offset === 0 && buffer.length > 0) return buffer.toString('utf8');
  return out;
}

export async function lastContainerLogLines(docker: Docker, id: string, n: number): Promise<string[]> {
  const raw = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail: n, follow: false })) as unknown as Buffer;
  return splitLogLines(demuxLogBuffer(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)))).slice(-n);
}

/** A readiness target for a started container: inspect, followed logs, HTTP probes on the published port. */
async function containerTarget(
  docker: Docker,
  id: string,
  baseUrl: string,
  servedName: string,
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
    servedModels: () => fetchServedModels(baseUrl),
    completeOneToken: () => completeOneToken(baseUrl, servedName),
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

/** Run the readiness state machine on a container; on failure remove it, then rethrow. */
async function awaitReadiness(
  docker: Docker,
  id: string,
  name: string,
  kind: EngineKind,
  port: number,
  servedName: string,
  options: ContainerUpOptions,
  removeOnFailure: boolean,
): Promise<number> {
  const baseUrl = `http://127.0.0.1:${port}`;
  const target = await containerTarget(docker, id, baseUrl, servedName);
  try {
    const result = await waitForReady(target, {
      servedName,
      timeouts: { ...engineKindInfo(kind).timeouts, ...options.timeouts },
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
  const existing = await listEngineContainers(docker, input.instance);

  const same = existing.find((c) => c.Labels[LABEL.configHash] === spec.configHash && c.State === 'running');
  if (same) {
    options.onProgress?.({ stage: 'note', message: `reusing the running engine ${spec.name} (same configuration)` });
    try {
      const readyInMs = await awaitReadiness(docker, same.Id, spec.name, input.kind, input.port, input.model.servedName, options, false);
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
      message: `removing the previous engine ${old.Names[0]?.replace(/^\//, '') ?? old.Id.slice(0, 12)} (${old.State}, other configuration)`,
    });
    await removeContainer(docker, old.Id, old.State === 'running');
  }
  if (info.mountsHfCache) mkdirSync(input.hfCacheDir, { recursive: true });

  let container: Docker.Container;
  try {
    container = await docker.createContainer(spec.options);
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
  const readyInMs = await awaitReadiness(docker, container.id, spec.name, input.kind, input.port, input.model.servedName, options, true);
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
  };
}

export interface ContainerStatus {
  mode: 'container';
  id: string;
  name: string;
  engine: string;
  model: string;
  servedName: string;
  image: string;
  state: string;
  restartCount: number;
  /** Restarted since it was created: the engine crashes after start (a crash loop while it keeps rising). */
  crashLoop: boolean;
  exitCode: number | null;
  health: 'ok' | 'loading' | 'down' | 'unknown';
  port: number | null;
  baseUrl: string | null;
  gpus: string;
  startedAt: string | null;
  uptimeSeconds: number | null;
  configHash: string;
}

export async function containerStatuses(docker: Docker, instance: string, now = Date.now()): Promise<ContainerStatus[]> {
  const out: ContainerStatus[] = [];
  for (const c of await listEngineContainers(docker, instance)) {
    let detail: Docker.ContainerInspectInfo;
    try {
      detail = await docker.getContainer(c.Id).inspect();
    } catch (err) {
      if (isNotFound(err)) continue; // removed between list and inspect
      throw err;
    }
    const port = Number(c.Labels[LABEL.port]) || null;
    const running = detail.State.Running;
    const baseUrl = port ? `http://127.0.0.1:${port}/v1` : null;
    const health = running && port ? await probeHealth(`http://127.0.0.1:${port}`, 2000) : running ? 'unknown' : 'down';
    const started = running ? Date.parse(detail.State.StartedAt) : NaN;
    out.push({
      mode: 'container',
      id: c.Id.slice(0, 12),
      name: detail.Name.replace(/^\//, ''),
      engine: c.Labels[LABEL.engine] ?? '?',
      model: c.Labels[LABEL.model] ?? '?',
      servedName: c.Labels[LABEL.servedName] ?? '?',
      image: c.Image,
      state: detail.State.Restarting ? 'restarting' : detail.State.Status,
      restartCount: detail.RestartCount,
      crashLoop: detail.RestartCount > 0,
      exitCode: running ? null : detail.State.ExitCode,
      health,
      port,
      baseUrl,
      gpus: c.Labels[LABEL.gpus] ?? 'none',
      startedAt: running ? detail.State.StartedAt : null,
      uptimeSeconds: Number.isFinite(started) ? Math.max(0, Math.round((now - started) / 1000)) : null,
      configHash: c.Labels[LABEL.configHash] ?? '',
    });
  }
  return out;
}

export interface ContainerDownResult {
  removed: Array<{ name: string; image: string }>;
  imagesRemoved: string[];
}

/** Stop and remove our containers; with purge, also the images they ran (weights in the HF cache stay). */
export async function downContainers(docker: Docker, instance: string, purge: boolean): Promise<ContainerDownResult> {
  const result: ContainerDownResult = { removed: [], imagesRemoved: [] };
  for (const c of await listEngineContainers(docker, instance)) {
    await removeContainer(docker, c.Id, c.State === 'running');
    result.removed.push({ name: c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12), image: c.Image });
  }
  if (purge) {
    for (const image of new Set(result.removed.map((r) => r.image))) {
      try {
        await docker.getImage(image).remove();
        result.imagesRemoved.push(image);
      } catch (err) {
        // Gone already, or still used by a container that is not ours: leave it.
        if (!isNotFound(err)) log('image %s kept: %s', image, dockerErrorMessage(err));
      }
    }
  }
  return result;
}

export interface LogsOptions {
  follow: boolean;
  tail?: number;
  stdout: Writable;
  stderr: Writable;
  signal?: AbortSignal;
}

/** Stream our engine container's logs, stdout and stderr kept apart. Resolves when the stream ends. */
export async function containerLogs(docker: Docker, id: string, options: LogsOptions): Promise<void> {
  const container = docker.getContainer(id);
  const tail = options.tail === undefined ? {} : { tail: options.tail };
  if (!options.follow) {
    const raw = (await container.logs({ stdout: true, stderr: true, ...tail, follow: false })) as unknown as Buffer;
    const buffer = Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw));
    let offset = 0;
    while (offset + 8 <= buffer.length) {
      const size = buffer.readUInt32BE(offset + 4);
      const payload = buffer.subarray(offset + 8, offset + 8 + size);
      (buffer[offset] === 2 ? options.stderr : options.stdout).write(payload);
      offset += 8 + size;
    }
    return;
  }
  const stream = (await container.logs({ stdout: true, stderr: true, ...tail, follow: true })) as unknown as NodeJS.ReadableStream & {
    destroy(): void;
  };
  await new Promise<void>((resolve, reject) => {
    const stop = () => {
      stream.destroy();
      resolve();
    };
    options.signal?.addEventListener('abort', stop, { once: true });
    // Pipe into PassThroughs, so a closed stdout (| head) never ends our process with EPIPE mid-demux.
    const out = new PassThrough();
    const err = new PassThrough();
    out.pipe(options.stdout, { end: false });
    err.pipe(options.stderr, { end: false });
    docker.modem.demuxStream(stream, out, err);
    stream.on('end', () => {
      options.signal?.removeEventListener('abort', stop);
      resolve();
    });
    stream.on('error', (e: Error) => (options.signal?.aborted ? resolve() : reject(e)));
  });
}
