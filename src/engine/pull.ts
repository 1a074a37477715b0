/*
 * Image pulls with one progress figure: Docker reports bytes per layer; these are summed into
 * "downloaded of total" and "layers done of layers". A pull fails on a stream error AND on an in-stream
 * {"error": ...} line (dockerd answers 200 and reports some failures only there), and a pull that goes
 * silent for too long fails with a TimeoutError instead of hanging.
 */

import type Docker from 'dockerode';
import { EngineError, EnvironmentError, TimeoutError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { diagnose, dockerErrorMessage } from './diagnose.js';

const log = createLogger('engine');

export type PullPolicy = 'if-missing' | 'always' | 'never';

export interface PullEvent {
  status?: string;
  id?: string;
  progress?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

interface LayerProgress {
  downloaded: number;
  total: number;
  done: boolean;
}

export interface PullProgress {
  image: string;
  layers: number;
  layersDone: number;
  downloadedBytes: number;
  /** Sum of the layer sizes known so far (grows as Docker learns them). */
  totalBytes: number;
  /** The latest status line from Docker, e.g. "Downloading" or "Digest: sha256:...". */
  status: string;
}

export interface PullTracker {
  update(event: PullEvent): PullProgress;
  snapshot(): PullProgress;
}

/** Pure accumulation of Docker's per-layer pull events into one figure. */
export function createPullTracker(image: string): PullTracker {
  const layers = new Map<string, LayerProgress>();
  let status = 'Pulling';
  const snapshot = (): PullProgress => {
    let downloadedBytes = 0;
    let totalBytes = 0;
    let layersDone = 0;
    for (const layer of layers.values()) {
      downloadedBytes += layer.downloaded;
      totalBytes += layer.total;
      if (layer.done) layersDone++;
    }
    return { image, layers: layers.size, layersDone, downloadedBytes, totalBytes, status };
  };
  const update = (event: PullEvent): PullProgress => {
    if (event.status) status = event.status;
    // Events without an id (or with the tag as id) describe the whole image, not a layer.
    const id = event.id;
    const isLayer = id !== undefined && /^[0-9a-f]{12,}$/.test(id);
    if (!isLayer || !event.status) return snapshot();
    const layer = layers.get(id) ?? { downloaded: 0, total: 0, done: false };
    const detail = event.progressDetail ?? {};
    switch (event.status) {
      case 'Downloading':
        if (typeof detail.total === 'number' && detail.total > 0) layer.total = detail.total;
        if (typeof detail.current === 'number') layer.downloaded = Math.min(detail.current, layer.total || detail.current);
        break;
      case 'Download complete':
      case 'Verifying Checksum':
        layer.downloaded = layer.total;
        break;
      case 'Pull complete':
      case 'Already exists':
        layer.downloaded = layer.total;
        layer.done = true;
        break;
      default:
        // "Pulling fs layer", "Waiting", "Extracting": the layer exists; extraction bytes are not download bytes.
        break;
    }
    layers.set(id, layer);
    return snapshot();
  };
  return { update, snapshot };
}

export function isNotFound(err: unknown): boolean {
  return (err as { statusCode?: number }).statusCode === 404;
}

export async function imageExists(docker: Docker, ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export interface EnsureImageOptions {
  policy: PullPolicy;
  onProgress?: (progress: PullProgress) => void;
  /** A pull that sends nothing for this long fails (default 5 minutes). */
  idleTimeoutMs?: number;
  signal?: AbortSignal;
}

export interface EnsureImageResult {
  image: string;
  pulled: boolean;
}

/** The error for a pull that failed, with a diagnosis when the message is one we know. */
export function pullFailure(image: string, err: unknown): Error {
  if (err instanceof TimeoutError || err instanceof EngineError || err instanceof EnvironmentError) return err;
  const message = dockerErrorMessage(err);
  const diagnosis = diagnose([message]);
  return new EnvironmentError(`cannot pull image ${image}: ${diagnosis ? diagnosis.summary : message}`, {
    next: diagnosis?.fix ?? 'Check the image name and the registry, or load the image beforehand and use --pull-policy never.',
    details: diagnosis ? [message] : [],
    cause: err,
  });
}

/** Consume a pull stream: resolves at its end, rejects on a stream error, an {"error"} line or silence. */
export function followPull(
  stream: NodeJS.ReadableStream,
  tracker: PullTracker,
  onProgress: ((progress: PullProgress) => void) | undefined,
  idleTimeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let buffered = '';
    let settled = false;
    let idleTimer: NodeJS.Timeout | undefined;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (idleTimer) clearTimeout(idleTimer);
      signal?.removeEventListener('abort', onAbort);
      if (err) {
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        reject(err);
      } else resolve();
    };
    const armIdle = () => {
      if (idleTimer) clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () =>
          finish(
            new TimeoutError(`image pull sent no progress for ${Math.round(idleTimeoutMs / 1000)} s`, idleTimeoutMs, {
              next: 'Check the network to the registry and retry; partially pulled layers are kept.',
            }),
          ),
        idleTimeoutMs,
      );
    };
    const onAbort = () => finish(new EngineError('image pull cancelled'));
    signal?.addEventListener('abort', onAbort, { once: true });
    const handleLine = (line: string) => {
      if (line.trim() === '') return;
      let event: PullEvent;
      try {
        event = JSON.parse(line) as PullEvent;
      } catch {
        return; // not JSON: ignore rather than fail a pull over a cosmetic line
      }
      if (event.error || event.errorDetail?.message) {
        finish(new Error(event.error ?? event.errorDetail?.message));
        return;
      }
      const progress = tracker.update(event);
      onProgress?.(progress);
    };
    stream.on('data', (chunk: Buffer | string) => {
      armIdle();
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        handleLine(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    });
    stream.on('error', (err: Error) => finish(err));
    stream.on('end', () => {
      handleLine(buffered);
      finish();
    });
    stream.on('close', () => finish());
    armIdle();
  });
}

/** Make sure the image is on this host, pulling according to the policy. */
export async function ensureImage(docker: Docker, image: string, options: EnsureImageOptions): Promise<EnsureImageResult> {
  const present = await imageExists(docker, image);
  if (options.policy === 'never') {
    if (present) return { image, pulled: false };
    throw new EnvironmentError(`image ${image} is not on this host, and the pull policy "never" forbids pulling it`, {
      next: `Load it first (docker load -i <bundle>, or docker pull ${image} where a registry is reachable), or use --pull-policy if-missing.`,
    });
  }
  if (options.policy === 'if-missing' && present) {
    log('image %s present, not pulled', image);
    return { image, pulled: false };
  }
  const tracker = createPullTracker(image);
  options.onProgress?.(tracker.snapshot());
  try {
    const stream = (await docker.pull(image)) as NodeJS.ReadableStream;
    await followPull(stream, tracker, options.onProgress, options.idleTimeoutMs ?? 5 * 60_000, options.signal);
  } catch (err) {
    throw pullFailure(image, err);
  }
  // A pull that "succeeded" without producing the image would only fail later at create, less clearly.
  if (!(await imageExists(docker, image))) {
    throw new EnvironmentError(`pulling ${image} finished but the image is not on this host`, {
      next: 'Check the image reference (--image) and the registry.',
    });
  }
  return { image, pulled: true };
}
