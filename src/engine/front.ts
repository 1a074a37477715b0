/*
 * The chat daemon in front of the engine (the last step of `up`): reuse a healthy daemon that already
 * proxies to this engine with its key, otherwise (re)start it with the engine as its upstream.
 */

import type { Paths } from '../core/paths.js';
import { daemonStatus, readDaemonState, startDaemonDetached, stopDaemon } from '../daemon/lifecycle.js';
import { engineKeyWrittenAt } from './engine-key.js';

export interface DaemonFront {
  url: string;
  pid: number;
  reused: boolean;
}

/**
 * The daemon calls the engine with the engine's key (as its upstream key, config daemon.upstreamApiKey). A
 * daemon started before the key on file was written holds an older key (or none), so it is restarted.
 */
export async function ensureDaemonInFront(
  paths: Paths,
  upstream: string,
  env: NodeJS.ProcessEnv = process.env,
  apiKey: string | null = null,
): Promise<DaemonFront> {
  const status = await daemonStatus(paths);
  const state = readDaemonState(paths);
  const keyWrittenAt = apiKey ? engineKeyWrittenAt(paths.stateDir) : null;
  const hasKey = keyWrittenAt === null || (status.startedAt !== null && Date.parse(status.startedAt) >= keyWrittenAt);
  if (status.running && status.healthy && state?.upstream === upstream && status.url && status.pid && hasKey) {
    return { url: status.url, pid: status.pid, reused: true };
  }
  if (status.running) await stopDaemon(paths);
  const daemonEnv = apiKey ? { ...env, CS_LLM_DAEMON_UPSTREAM_API_KEY: apiKey } : env;
  const started = await startDaemonDetached({ paths, args: ['--upstream', upstream], env: daemonEnv });
  return { ...started, reused: false };
}

export async function stopDaemonInFront(paths: Paths): Promise<number | null> {
  const result = await stopDaemon(paths);
  return result.stopped ? result.pid : null;
}
