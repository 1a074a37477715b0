import type Docker from 'dockerode';
import { createLogger } from '../core/log.js';
import { dockerErrorMessage } from './diagnose.js';
import { probeHealth } from './probes.js';
import { isNotFound } from './pull.js';
import { LABEL } from './labels.js';
import { removeEngineNetworkIfUnused } from './network.js';

// Our engine containers as Docker lists them (found by label, never by name guessing): their status, and
// their removal for `down` and for `up` replacing one.
const log = createLogger('engine');

export async function listEngineContainers(docker: Docker, instance?: string): Promise<Docker.ContainerInfo[]> {
  const labels = [`${LABEL.managed}=true`];
  if (instance) labels.push(`${LABEL.instance}=${instance}`);
  return docker.listContainers({ all: true, filters: { label: labels } });
}

export async function removeContainer(docker: Docker, id: string, stopFirst: boolean): Promise<void> {
  const container = docker.getContainer(id);
  try {
    // A graceful stop lets vLLM release GPU memory cleanly; force-remove is the backstop.
    if (stopFirst) await container.stop({ t: 10 }).catch(() => undefined);
    await container.remove({ force: true, v: true });
  } catch (err) {
    if (!isNotFound(err) && !/removal of container .* is already in progress/i.test(dockerErrorMessage(err))) throw err;
  }
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
    // The engines' network goes too once nothing uses it (another home's engine may still).
    await removeEngineNetworkIfUnused(docker);
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

/** Removes our replica containers numbered `count` and above: an earlier up placed more engines than this one. */
export async function removeReplicasFrom(docker: Docker, instance: string, count: number): Promise<string[]> {
  const removed: string[] = [];
  for (const c of await listEngineContainers(docker, instance)) {
    if (Number(c.Labels[LABEL.replica] ?? '0') < count) continue;
    await removeContainer(docker, c.Id, c.State === 'running');
    removed.push(c.Names[0]?.replace(/^\//, '') ?? c.Id.slice(0, 12));
  }
  return removed;
}
