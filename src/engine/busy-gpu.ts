/*
 * A GPU asked for by index must have the memory vLLM wants free at start (total x utilization; vLLM refuses
 * with "Free memory on device ... less than desired GPU memory utilization" otherwise). When it has not,
 * `up` refuses before anything is pulled and names who holds the memory, from nvidia-smi's compute-apps query.
 */

import { FitError } from '../core/errors.js';
import { describeComputeApps, queryComputeApps, type ComputeAppsResult } from '../gpu/compute-apps.js';
import type { GpuInfo } from '../gpu/parse.js';
import { formatGiB } from '../models/fit.js';

const MiB = 1024 ** 2;

export type ComputeAppsQuery = (gpuIndex: number, env: NodeJS.ProcessEnv) => Promise<ComputeAppsResult>;

export const defaultComputeAppsQuery: ComputeAppsQuery = (index, env) => queryComputeApps(index, { env });

/** Throws a FitError for the first GPU whose free memory is below total x utilization, naming its processes. */
export async function refuseBusyGpus(
  gpus: readonly GpuInfo[],
  gpuMemoryUtilization: number,
  env: NodeJS.ProcessEnv,
  query: ComputeAppsQuery = defaultComputeAppsQuery,
): Promise<void> {
  for (const gpu of gpus) {
    if (gpu.memoryFreeMiB === null || gpu.memoryTotalMiB === null) continue;
    const needMiB = gpu.memoryTotalMiB * gpuMemoryUtilization;
    if (gpu.memoryFreeMiB >= needMiB) continue;
    const apps = await query(gpu.index, env);
    const who =
      apps.apps.length > 0
        ? `Using it: ${describeComputeApps(apps.apps)}.`
        : apps.problem
          ? `The processes using it are not known (${apps.problem}).`
          : 'No compute process is listed on it (a display, or another container whose processes nvidia-smi cannot see, may hold the memory).';
    const lower = Math.floor((gpu.memoryFreeMiB / gpu.memoryTotalMiB) * 100 - 1) / 100;
    throw new FitError(
      `GPU ${gpu.index} (${gpu.name}) is busy: ${formatGiB(gpu.memoryFreeMiB * MiB)} free, and vLLM needs ${formatGiB(needMiB * MiB)} ` +
        `(${gpuMemoryUtilization} x ${formatGiB(gpu.memoryTotalMiB * MiB)}) free to start. ${who}`,
      {
        next:
          `Stop those processes, pick another GPU with --gpus (cs-llm gpu lists them)` +
          (lower > 0.1
            ? `, or lower the utilization to ${lower.toFixed(2)} (CS_LLM_ENGINE_GPU_MEMORY_UTILIZATION) with a smaller model.`
            : '.'),
      },
    );
  }
}
