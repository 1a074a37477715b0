/*
 * Who holds a GPU's memory: nvidia-smi's compute-apps query for one GPU, so that a refusal can name the
 * processes and what each holds instead of only saying the memory is not free. Graphics clients (a desktop's
 * Xorg) are not compute apps and are not listed; their share shows only as used memory.
 */

import { runNvidiaSmi, type DetectGpusOptions } from './detect.js';

export const COMPUTE_APPS_FIELDS = 'pid,process_name,used_memory';

export interface ComputeApp {
  pid: number;
  processName: string;
  /** MiB; null when nvidia-smi cannot tell ([N/A], e.g. another container's process on some drivers). */
  usedMemoryMiB: number | null;
}

/**
 * Parses `nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv`: a header line
 * (`pid, process_name, used_gpu_memory [MiB]`), then one line per process with the unit (`16384 MiB`). A GPU
 * no process uses prints the header alone. A process name may hold ", ": the first field is the pid and the
 * last the memory, so the name is what lies between.
 */
export function parseComputeAppsCsv(text: string): ComputeApp[] {
  const apps: ComputeApp[] = [];
  for (const line of text.split('\n').map((l) => l.trim())) {
    if (!line || /^pid\s*,/i.test(line)) continue;
    const parts = line.split(', ');
    if (parts.length < 3) continue;
    const pid = Number(parts[0]);
    if (!Number.isInteger(pid)) continue;
    const memory = /^(\d+)\s*MiB$/i.exec(parts.at(-1)!.trim());
    apps.push({ pid, processName: parts.slice(1, -1).join(', '), usedMemoryMiB: memory ? Number(memory[1]) : null });
  }
  return apps;
}

export interface ComputeAppsResult {
  apps: ComputeApp[];
  /** Why the list could not be read (nvidia-smi missing, failing or hanging); apps is then empty. */
  problem?: string;
}

/** The compute processes on one GPU (by index). Never throws: a failed query says so in `problem`. */
export async function queryComputeApps(gpuIndex: number, options: DetectGpusOptions = {}): Promise<ComputeAppsResult> {
  const run = await runNvidiaSmi(['-i', String(gpuIndex), `--query-compute-apps=${COMPUTE_APPS_FIELDS}`, '--format=csv'], options);
  if (run.missing) return { apps: [], problem: 'nvidia-smi was not found' };
  if (run.timedOut) return { apps: [], problem: 'nvidia-smi did not answer' };
  if (run.exitCode !== 0) return { apps: [], problem: `nvidia-smi failed: ${run.output.split('\n')[0] ?? ''}`.trim() };
  return { apps: parseComputeAppsCsv(run.stdout) };
}

/** "pid 4242 python3 (16.0 GiB), pid 5151 /usr/local/bin/ollama (2.0 GiB)", largest first. */
export function describeComputeApps(apps: readonly ComputeApp[]): string {
  return [...apps]
    .sort((a, b) => (b.usedMemoryMiB ?? -1) - (a.usedMemoryMiB ?? -1))
    .map(
      (a) =>
        `pid ${a.pid} ${a.processName} (${a.usedMemoryMiB === null ? 'memory unknown' : `${(a.usedMemoryMiB / 1024).toFixed(1)} GiB`})`,
    )
    .join(', ');
}
