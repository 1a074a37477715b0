/*
 * The Docker boundary: one dockerode client built from DOCKER_HOST (or the default socket), and a probe
 * that turns "cannot talk to the engine" into a reason and a fix. Everything else that talks to the Docker
 * Engine API takes a Docker instance as a parameter, so tests can pass the real engine or a fake.
 */

import Docker from 'dockerode';
import { EnvironmentError } from '../core/errors.js';

export const DEFAULT_SOCKET = '/var/run/docker.sock';

export interface DockerEndpoint {
  /** Human-readable: unix:///var/run/docker.sock or tcp://host:port */
  description: string;
  options: Docker.DockerOptions;
}

export function dockerEndpoint(env: NodeJS.ProcessEnv = process.env): DockerEndpoint {
  const host = env.DOCKER_HOST;
  if (!host || host.startsWith('unix://')) {
    const socketPath = host ? host.slice('unix://'.length) : DEFAULT_SOCKET;
    return { description: `unix://${socketPath}`, options: { socketPath } };
  }
  const url = new URL(host.replace(/^tcp:/, 'http:'));
  return {
    description: host,
    options: { host: url.hostname, port: Number(url.port || 2375), protocol: 'http' },
  };
}

export function createDockerClient(env: NodeJS.ProcessEnv = process.env): Docker {
  return new Docker(dockerEndpoint(env).options);
}

export type DockerProblem = 'missing' | 'permission' | 'refused' | 'timeout' | 'other';

export interface DockerProbe {
  endpoint: string;
  reachable: boolean;
  problem?: DockerProblem;
  detail: string;
  fix?: string;
  apiVersion?: string;
  serverVersion?: string;
  runtimes?: string[];
}

function classify(err: unknown, endpoint: string): Pick<DockerProbe, 'problem' | 'detail' | 'fix'> {
  const code = (err as NodeJS.ErrnoException).code;
  const message = (err as Error).message ?? String(err);
  if (code === 'ENOENT') {
    return {
      problem: 'missing',
      detail: `no Docker Engine socket at ${endpoint}`,
      fix: 'Install Docker Engine and start it (systemctl start docker), or set DOCKER_HOST to where it listens.',
    };
  }
  if (code === 'EACCES') {
    return {
      problem: 'permission',
      detail: `permission denied on ${endpoint}`,
      fix: 'Add your user to the docker group (sudo usermod -aG docker $USER, then log in again), or run as root.',
    };
  }
  if (code === 'ECONNREFUSED') {
    return {
      problem: 'refused',
      detail: `nothing answers at ${endpoint} (connection refused)`,
      fix: 'Start the Docker daemon (systemctl start docker), or point DOCKER_HOST at a running one.',
    };
  }
  if (/timeout/i.test(message)) {
    return {
      problem: 'timeout',
      detail: `Docker Engine at ${endpoint} did not answer in time`,
      fix: 'Check that dockerd is healthy: docker info.',
    };
  }
  return { problem: 'other', detail: `Docker Engine at ${endpoint}: ${message}`, fix: 'Check that dockerd is running: docker info.' };
}

/** Ping, version and info, never throwing: the doctor and `up` decide what a failure means. */
export async function probeDocker(docker: Docker, env: NodeJS.ProcessEnv = process.env, timeoutMs = 3000): Promise<DockerProbe> {
  const endpoint = dockerEndpoint(env).description;
  const withTimeout = <T>(promise: Promise<T>): Promise<T> =>
    Promise.race([
      promise,
      new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timeout after ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
  try {
    await withTimeout(docker.ping());
    const version = await withTimeout(docker.version());
    const info = (await withTimeout(docker.info())) as { Runtimes?: Record<string, unknown> };
    return {
      endpoint,
      reachable: true,
      detail: `Docker Engine ${version.Version} (API ${version.ApiVersion}) at ${endpoint}`,
      apiVersion: version.ApiVersion,
      serverVersion: version.Version,
      runtimes: Object.keys(info.Runtimes ?? {}),
    };
  } catch (err) {
    return { endpoint, reachable: false, ...classify(err, endpoint) };
  }
}

/** For callers that cannot go on without Docker. */
export async function requireDockerEngine(docker: Docker, env: NodeJS.ProcessEnv = process.env): Promise<DockerProbe> {
  const probe = await probeDocker(docker, env);
  if (!probe.reachable) throw new EnvironmentError(`Docker Engine is not usable: ${probe.detail}`, { next: probe.fix });
  return probe;
}
