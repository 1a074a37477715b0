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
  upstream: string | string[],
  env: NodeJS.ProcessEnv = process.env,
  apiKey: string | null = null,
): Promise<DaemonFront> {
  const upstreams = typeof upstream === 'string' ? [upstream] : upstream;
  const status = await daemonStatus(paths);
  const state = readDaemonState(paths);
  const keyWrittenAt = apiKey ? engineKeyWrittenAt(paths.stateDir) : null;
  const hasKey = keyWrittenAt === null || (status.startedAt !== null && Date.parse(status.startedAt) >= keyWrittenAt);
  if (status.running && status.healthy && state?.upstream === upstreams.join(',') && status.url && status.pid && hasKey) {
    return { url: status.url, pid: status.pid, reused: true };
  }
  if (status.running) await stopDaemon(paths);
  const started =
    upstreams.length === 1
      ? await startDaemonDetached({
          paths,
          args: ['--upstream', upstreams[0]!],
          env: apiKey ? { ...env, CS_LLM_DAEMON_UPSTREAM_API_KEY: apiKey } : env,
        })
      : await startDaemonDetached({ paths, args: [], env: replicaDaemonEnv(upstreams, env, apiKey) });
  return { ...started, reused: false };
}

/** The variable the replicas' key reaches the daemon in (not a CS_LLM_<SECTION>_ name, so no config field reads it). */
export const REPLICAS_KEY_ENV = 'CS_LLM_REPLICAS_API_KEY';

/**
 * Several engines (replicas) as the daemon's upstreams, local, with session-sticky routing: a session's turns
 * stay on one replica while it is healthy (its prefix cache holds the conversation), and fail over otherwise.
 * They share one key, given by name (apiKeyEnv) so that it is in no config file and no command line.
 */
export function replicaDaemonEnv(upstreams: readonly string[], env: NodeJS.ProcessEnv, apiKey: string | null): NodeJS.ProcessEnv {
  const list = upstreams.map((url, i) => ({ name: `engine-${i}`, url, kind: 'local', ...(apiKey ? { apiKeyEnv: REPLICAS_KEY_ENV } : {}) }));
  return {
    ...env,
    CS_LLM_DAEMON_UPSTREAMS: JSON.stringify(list),
    CS_LLM_DAEMON_STICKY: 'true',
    ...(apiKey ? { [REPLICAS_KEY_ENV]: apiKey } : {}),
  };
}

export async function stopDaemonInFront(paths: Paths): Promise<number | null> {
  const result = await stopDaemon(paths);
  return result.stopped ? result.pid : null;
}
