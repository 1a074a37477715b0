import Docker from 'dockerode';
import type { TestContext } from 'node:test';

/**
 * Integration tests that need a Docker engine call this first. Outside CI, no engine means a skip with a
 * reason; inside CI (CI=true) it is a failure, because .ci/run is supposed to have started dockerd.
 */
export async function requireDocker(t: TestContext): Promise<Docker | null> {
  const docker = new Docker();
  try {
    await docker.ping();
    return docker;
  } catch (err) {
    const reason = `no Docker engine reachable (${(err as Error).message}); run .ci/run or start dockerd`;
    if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`);
    // A suite hook's context has no skip(): there the tests skip themselves on the null.
    if (typeof (t as Partial<TestContext>).skip === 'function') t.skip(reason);
    return null;
  }
}

/** The simulator image that .ci/run builds and pushes to the loopback registry. */
export const SIM_IMAGE = process.env.CS_LLM_SIM_IMAGE ?? '127.0.0.1:5000/cs-llm/sim:test';
export const REGISTRY = '127.0.0.1:5000';
