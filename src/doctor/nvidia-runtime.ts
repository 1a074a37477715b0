import { readdirSync, readFileSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import type { DockerProbe } from '../engine/docker.js';
import type { GpuRuntimeProbe } from '../engine/gpu-preflight.js';
import type { GpuReport } from '../gpu/detect.js';
import type { Check } from './check.js';

// The doctor's nvidia-runtime check: can Docker hand GPUs to containers? Docker's own answer first, then the
// host files that hint at it (the toolkit's executables, a registered runtime, CDI specs).

export const CDI_DIRS = ['/etc/cdi', '/var/run/cdi'];
/** Executables that make Docker's `--gpus` / DeviceRequests work (FACTS.md section 1). */
export const NVIDIA_RUNTIME_EXECUTABLES = ['nvidia-container-runtime-hook', 'nvidia-ctk', 'nvidia-container-runtime'];

/** dockerd often runs with a wider PATH than the user's shell (sbin included), so these are searched too. */
export const SYSTEM_BIN_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function findOnPath(names: string[], env: NodeJS.ProcessEnv, extraDirs: string[]): string | null {
  const dirs = [...(env.PATH ?? '').split(delimiter), ...extraDirs].filter(Boolean);
  for (const name of names) {
    for (const dir of dirs) {
      const file = join(dir, name);
      try {
        if (statSync(file).isFile()) return file;
      } catch {
        // not in this directory
      }
    }
  }
  return null;
}

function findNvidiaCdiSpec(dirs: string[]): string | null {
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names.filter((n) => /\.(ya?ml|json)$/.test(n)).sort()) {
      const file = join(dir, name);
      try {
        if (readFileSync(file, 'utf8').includes('nvidia.com/gpu')) return file;
      } catch {
        // unreadable spec: look at the next
      }
    }
  }
  return null;
}

export function checkNvidiaRuntime(options: {
  probe: DockerProbe | null;
  gpuReport: GpuReport;
  env: NodeJS.ProcessEnv;
  cdiDirs: string[];
  /** Searched after PATH; default SYSTEM_BIN_DIRS. */
  binDirs?: string[];
  /** Docker's own answer to a GPU request (src/engine/gpu-preflight.ts), when it was asked. */
  dockerAnswer?: GpuRuntimeProbe | null;
}): Check {
  const { probe, gpuReport, env, dockerAnswer } = options;
  const base = { name: 'nvidia-runtime' as const, neededByUp: false };
  const runtimes = probe?.runtimes ?? [];
  const hook = findOnPath(NVIDIA_RUNTIME_EXECUTABLES, env, options.binDirs ?? SYSTEM_BIN_DIRS);
  const cdi = findNvidiaCdiSpec(options.cdiDirs);
  const toolkitFix =
    'Install the NVIDIA Container Toolkit (apt-get install nvidia-container-toolkit), then sudo nvidia-ctk runtime configure --runtime=docker and restart Docker.';
  // Docker's answer is the sure one; the host files below only hint.
  if (dockerAnswer?.verdict === 'ok') {
    return {
      ...base,
      status: 'ok',
      detail: `Docker accepts GPU requests (asked with a container that never ran)${hook ? `; toolkit at ${hook}` : ''}`,
      fix: null,
    };
  }
  if (dockerAnswer?.verdict === 'missing') {
    // The trap FACTS.md section 1 describes: dockerd registers the nvidia driver only if the hook is there when it starts.
    const installed = hook ? `; ${hook} is installed, but dockerd registers the nvidia driver only when it starts` : '';
    return {
      ...base,
      status: 'warn',
      detail: `Docker refuses GPU requests: ${dockerAnswer.message}${installed}`,
      fix: hook ? 'Restart Docker (systemctl restart docker) so it registers the NVIDIA runtime.' : toolkitFix,
    };
  }
  if (runtimes.includes('nvidia')) {
    return { ...base, status: 'ok', detail: 'the nvidia runtime is registered with Docker', fix: null };
  }
  if (hook) {
    return { ...base, status: 'ok', detail: `NVIDIA Container Toolkit found (${hook}); Docker's GPU device requests use it`, fix: null };
  }
  if (cdi) {
    return { ...base, status: 'ok', detail: `NVIDIA CDI spec found (${cdi}); needs Docker 25+ with CDI enabled`, fix: null };
  }
  if (gpuReport.gpus.length === 0) {
    return { ...base, status: 'ok', detail: 'not needed: no NVIDIA GPU detected', fix: null };
  }
  return {
    ...base,
    status: 'warn',
    detail: `${gpuReport.gpus.length} GPU(s) present, but no NVIDIA container runtime: no nvidia runtime in Docker, no ${NVIDIA_RUNTIME_EXECUTABLES[0]} or nvidia-ctk on PATH, no CDI spec in ${options.cdiDirs.join(' or ')}`,
    fix: toolkitFix,
  };
}
