import type Docker from 'dockerode';
import { EnvironmentError } from '../core/errors.js';
import { isNotFound } from './pull.js';
import { LABEL } from './labels.js';

// The engines' own Docker network. Publishing the port on 127.0.0.1 does not confine a container on Docker's
// default bridge: any other container there reaches it at its bridge address. On a bridge network of its own,
// Docker's isolation rules keep containers of other networks out, and with inter-container traffic off
// (enable_icc false) the engines of several cs-llm homes sharing it cannot reach each other either. Outbound
// traffic still works (vLLM downloads weights), so the network is not `internal`: an internal network gets
// no published ports at all.

export const ENGINE_NETWORK = 'cs-llm-engines';

export const ENGINE_NETWORK_OPTIONS: Record<string, string> = {
  'com.docker.network.bridge.enable_icc': 'false',
  // A port published without an address binds here instead of on every interface.
  'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1',
};

/** What is wrong with an existing network of that name, or null when it confines as it should. */
export function networkProblem(info: { Driver?: string; Internal?: boolean; Options?: Record<string, string> | null }): string | null {
  if (info.Driver !== 'bridge') return `its driver is ${info.Driver ?? 'unknown'}, not bridge`;
  if (info.Options?.['com.docker.network.bridge.enable_icc'] !== 'false') return 'inter-container traffic is on (enable_icc is not false)';
  return null;
}

/**
 * The network, created when missing. One that exists under this name but lets containers talk to each other
 * (made by hand, or by something else) is refused rather than used: the engine would not be confined.
 */
export async function ensureEngineNetwork(docker: Docker, name = ENGINE_NETWORK): Promise<string> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const info = (await docker.getNetwork(name).inspect()) as { Driver?: string; Options?: Record<string, string> | null };
      const problem = networkProblem(info);
      if (problem) {
        throw new EnvironmentError(`the Docker network ${name} exists but would not confine the engine: ${problem}`, {
          next: `Remove it (docker network rm ${name}; cs-llm down first if an engine uses it), and cs-llm up creates it as it should be.`,
        });
      }
      return name;
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
    try {
      await docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Internal: false,
        Options: ENGINE_NETWORK_OPTIONS,
        Labels: { [LABEL.managed]: 'true' },
      });
      return name;
    } catch (err) {
      // Another `up` created it meanwhile: inspect it again.
      if ((err as { statusCode?: number }).statusCode !== 409) throw err;
    }
  }
  return name;
}

/** Removes the network when no container uses it any more (down --purge); anything else leaves it. */
export async function removeEngineNetworkIfUnused(docker: Docker, name = ENGINE_NETWORK): Promise<boolean> {
  try {
    const info = (await docker.getNetwork(name).inspect()) as { Containers?: Record<string, unknown> };
    if (Object.keys(info.Containers ?? {}).length > 0) return false;
    await docker.getNetwork(name).remove();
    return true;
  } catch {
    return false;
  }
}
