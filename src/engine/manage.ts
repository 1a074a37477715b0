/*
 * `down`, `status` and `logs` over both ways an engine runs: our containers (found by label) and the
 * simulator as a local process (found by its state file). A missing Docker engine is not an error here:
 * there is then simply no container of ours to act on.
 */

import type { Writable } from 'node:stream';
import type Docker from 'dockerode';
import { rmSync } from 'node:fs';
import { NotFoundError } from '../core/errors.js';
import { engineKeyFile } from './engine-key.js';
import type { Paths } from '../core/paths.js';
import { dockerFailure } from './container.js';
import { containerLogs } from './container-logs.js';
import { containerStatuses, downContainers, listEngineContainers, type ContainerStatus } from './containers.js';
import { createDockerClient, probeDocker } from './docker.js';
import { downLocalProcess, localLogs, localStatus, type LocalStatus } from './local.js';
import { instanceIdFor } from './spec.js';
import { stopDaemonInFront } from './front.js';
import { daemonStatus, type DaemonStatus } from '../daemon/lifecycle.js';

export interface ManageOptions {
  paths: Paths;
  env?: NodeJS.ProcessEnv;
  docker?: Docker;
}

async function reachableDocker(options: ManageOptions): Promise<{ docker: Docker | null; problem: string | null }> {
  const env = options.env ?? process.env;
  const docker = options.docker ?? createDockerClient(env);
  const probe = await probeDocker(docker, env);
  return probe.reachable ? { docker, problem: null } : { docker: null, problem: probe.detail };
}

export type EngineStatus = ContainerStatus | LocalStatus;

export interface StatusReport {
  engines: EngineStatus[];
  daemon: DaemonStatus;
  /** Why containers could not be listed (no Docker engine), or null. */
  dockerProblem: string | null;
}

export async function engineStatus(options: ManageOptions): Promise<StatusReport> {
  const { docker, problem } = await reachableDocker(options);
  const engines: EngineStatus[] = [];
  if (docker)
    engines.push(
      ...(await containerStatuses(docker, instanceIdFor(options.paths.home)).catch((err: unknown) => {
        throw dockerFailure(err, 'reading the engine status');
      })),
    );
  const local = await localStatus(options.paths.stateDir);
  if (local) engines.push(local);
  return { engines, daemon: await daemonStatus(options.paths), dockerProblem: problem };
}

export interface DownReport {
  containers: string[];
  images: string[];
  processes: number[];
  /** The pid of the chat daemon that was stopped, or null when none ran. */
  daemon: number | null;
  dockerProblem: string | null;
}

export async function engineDown(options: ManageOptions & { purge: boolean }): Promise<DownReport> {
  const { docker, problem } = await reachableDocker(options);
  const report: DownReport = { containers: [], images: [], processes: [], daemon: null, dockerProblem: problem };
  if (docker) {
    const removed = await downContainers(docker, instanceIdFor(options.paths.home), options.purge).catch((err: unknown) => {
      throw dockerFailure(err, 'removing the engine');
    });
    report.containers = removed.removed.map((r) => r.name);
    report.images = removed.imagesRemoved;
  }
  const local = await downLocalProcess(options.paths.stateDir, options.purge);
  if (local) report.processes.push(local.pid);
  // The key belonged to the engine just removed; kept when Docker could not be asked and no process was
  // stopped (a container of ours may still run and need it).
  if (!problem || local) rmSync(engineKeyFile(options.paths.stateDir), { force: true });
  // The daemon goes first in spirit (it fronts the engine), but stopping it last keeps down simple:
  // with no engine behind it, it would only answer errors.
  report.daemon = await stopDaemonInFront(options.paths);
  return report;
}

export interface EngineLogsOptions extends ManageOptions {
  follow: boolean;
  tail?: number;
  stdout: Writable;
  stderr: Writable;
  signal?: AbortSignal;
}

export async function engineLogs(options: EngineLogsOptions): Promise<void> {
  const { docker, problem } = await reachableDocker(options);
  if (docker) {
    try {
      const containers = await listEngineContainers(docker, instanceIdFor(options.paths.home));
      // The running one first; a stopped one still has the logs of why it stopped.
      const chosen = containers.find((c) => c.State === 'running') ?? containers[0];
      if (chosen) {
        await containerLogs(docker, chosen.Id, options);
        return;
      }
    } catch (err) {
      throw dockerFailure(err, 'reading the engine logs');
    }
  }
  if (await localLogs(options.paths.stateDir, options)) return;
  throw new NotFoundError(`no engine to show logs of${problem ? ` (and no Docker engine: ${problem})` : ''}`, {
    next: 'Start one with cs-llm up; a failed up prints the last log lines itself.',
  });
}
