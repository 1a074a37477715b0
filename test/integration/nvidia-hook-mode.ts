/*
 * Switches dockerd between "the stand-in nvidia-container-runtime-hook is on its PATH" (containers that
 * ask for GPUs start) and "it is not" (they fail: could not select device driver "nvidia"), through
 * scripts/ci/restart-docker.sh. A switch restarts dockerd, which stops every running container, so
 * tests only do it where they own the engine: in CI, or when CS_LLM_TEST_RESTART_DOCKER=1.
 */

import { join } from 'node:path';
import { execa } from 'execa';
import { PACKAGE_ROOT } from '../../src/core/version.js';

export type NvidiaHookMode = 'with' | 'without';

const CI_SCRIPTS = join(PACKAGE_ROOT, 'scripts', 'ci');

/** Why this process may not restart dockerd, or null when it may. */
export function dockerRestartRefusal(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.CI !== 'true' && env.CS_LLM_TEST_RESTART_DOCKER !== '1') {
    return 'switching the nvidia hook restarts dockerd and stops every container; runs in CI, or set CS_LLM_TEST_RESTART_DOCKER=1';
  }
  if (process.getuid?.() !== 0) return 'restarting dockerd needs root';
  return null;
}

export async function currentNvidiaHookMode(): Promise<NvidiaHookMode | 'unknown'> {
  const { stdout } = await execa(join(CI_SCRIPTS, 'nvidia-hook-mode.sh'), { timeout: 10_000 });
  const mode = stdout.trim();
  return mode === 'with' || mode === 'without' ? mode : 'unknown';
}

/** Restarts dockerd in the given mode unless it already runs that way; resolves once it answers again. */
export async function setNvidiaHookMode(mode: NvidiaHookMode): Promise<void> {
  await execa(join(CI_SCRIPTS, 'restart-docker.sh'), [`--${mode}-nvidia-hook`], { timeout: 120_000 });
}
