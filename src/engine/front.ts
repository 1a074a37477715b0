/*
 * The chat daemon in front of the engine (the last step of `up`): reuse a healthy daemon that already
 * proxies to this engine, otherwise (re)start it with the engine as its upstream.
 */

import type { Paths } from '../core/paths.js';
import { daemonStatus, readDaemonState, startDaemonDetached, stopDaemon } from '../daemon/lifecycle.js';

export interface DaemonFront {
  url: string;
  pid: number;
  reused: boolean;
}

export async function ensureDaemonInFront(paths: Paths, upstream: string, env: NodeJS.ProcessEnv = process.env): Promise<DaemonFront> {
  const status = await daemonStatus(paths);
  const state = readDaemonState(paths);
  if (status.running && status.healthy && state?.upstream === upstream && status.url && status.pid) {
    return { url: status.url, pid: status.pid, reused: true };
  }
  if (status.running) await stopDaemon(paths);
  const started = await startDaemonDetached({ paths, args: ['--upstream', upstream], env });
  return { ...started, reused: false };
}

export async function stopDaemonInFront(paths: Paths): Promise<number | null> {
  const result = await stopDaemon(paths);
  return result.stopped ? result.pid : null;
}
