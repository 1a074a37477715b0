/*
 * GPU detection at the hardware edge: nvidia-smi (the only source that knows what the NVIDIA engine can
 * use), with systeminformation as a fallback when nvidia-smi is not installed, so the operator still sees
 * the cards that are there. Never throws for a missing or broken GPU stack: the report carries the problem
 * and its fix, and callers (doctor, up, the gpu command) decide what it means for them.
 */

import { execa } from 'execa';
import si from 'systeminformation';
import { createLogger } from '../core/log.js';
import {
  GPU_QUERY_FIELDS,
  GPU_QUERY_FIELDS_LEGACY,
  classifyNvidiaSmiFailure,
  parseNvidiaSmiCsv,
  parseNvidiaSmiList,
  type GpuInfo,
} from './parse.js';

export type GpuSource = 'nvidia-smi' | 'systeminformation' | 'none';

export interface GpuReport {
  source: GpuSource;
  gpus: GpuInfo[];
  /** True when the GPUs were seen by nvidia-smi, so the NVIDIA (vLLM) engine can use them. */
  usable: boolean;
  driverVersion: string | null;
  /** What is wrong (a warning when usable is still true, e.g. MIG). */
  problem?: string;
  fix?: string;
  migEnabled?: boolean;
}

/**
 * nvidia-smi is installed but fails (driver not loaded, driver/library version mismatch after an update, no
 * permission, a hang): a GPU box whose GPU stack is broken, not a machine without a GPU. Such a host must be
 * repaired, or told explicitly to run without its GPU; nothing should quietly fall back to the CPU.
 */
export function gpuStackBroken(report: Pick<GpuReport, 'source' | 'usable'>): boolean {
  return report.source === 'nvidia-smi' && !report.usable;
}

/** Just what the fallback reads of systeminformation's graphics(); lets tests pass recorded data. */
export interface GraphicsControllers {
  controllers: Array<{
    vendor?: string;
    model?: string;
    name?: string;
    vram?: number | null;
    memoryTotal?: number | null;
    memoryUsed?: number | null;
    memoryFree?: number | null;
    utilizationGpu?: number | null;
    temperatureGpu?: number | null;
    powerDraw?: number | null;
    driverVersion?: string;
  }>;
}

export interface DetectGpusOptions {
  /** Environment for nvidia-smi, PATH included (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Limit for each nvidia-smi call; then SIGTERM, and SIGKILL 2 s later. */
  timeoutMs?: number;
  /** The nvidia-smi executable (default: looked up on PATH). */
  nvidiaSmi?: string;
  /** The fallback's data source (default: systeminformation's graphics()). */
  graphics?: () => Promise<GraphicsControllers>;
}

export const DEFAULT_NVIDIA_SMI_TIMEOUT_MS = 10_000;
const KILL_AFTER_MS = 2_000;

const log = createLogger('gpu');

export interface SmiRun {
  missing: boolean;
  timedOut: boolean;
  exitCode: number | undefined;
  output: string;
  stdout: string;
}

export async function runNvidiaSmi(args: string[], options: DetectGpusOptions): Promise<SmiRun> {
  const file = options.nvidiaSmi ?? 'nvidia-smi';
  const timeout = options.timeoutMs ?? DEFAULT_NVIDIA_SMI_TIMEOUT_MS;
  const result = await execa(file, args, {
    reject: false,
    timeout,
    forceKillAfterDelay: KILL_AFTER_MS,
    stdin: 'ignore',
    // A given env is used as it is (its PATH decides which nvidia-smi runs); spawn looks the file up in it.
    ...(options.env ? { env: options.env, extendEnv: false } : {}),
  });
  log(`${file} ${args.join(' ')} -> exit ${result.exitCode}${result.timedOut ? ' (timed out)' : ''}`);
  const code = (result as { code?: string }).code;
  return {
    missing: code === 'ENOENT',
    timedOut: Boolean(result.timedOut),
    exitCode: result.exitCode,
    // nvidia-smi prints its failures on stdout; read both streams.
    output: `${String(result.stdout ?? '')}\n${String(result.stderr ?? '')}`.trim(),
    stdout: String(result.stdout ?? ''),
  };
}

function queryArgs(fields: readonly string[]): string[] {
  return [`--query-gpu=${fields.join(',')}`, '--format=csv,noheader,nounits'];
}

async function fromSystemInformation(options: DetectGpusOptions, reason: string): Promise<GpuReport> {
  const timeout = options.timeoutMs ?? DEFAULT_NVIDIA_SMI_TIMEOUT_MS;
  const graphics = options.graphics ?? (() => si.graphics());
  let data: GraphicsControllers = { controllers: [] };
  try {
    data = await Promise.race([
      graphics(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeout} ms`)), timeout).unref()),
    ]);
  } catch (err) {
    log(`systeminformation graphics() failed: ${(err as Error).message}`);
  }
  const gpus: GpuInfo[] = data.controllers.map((c, index) => ({
    index,
    uuid: null,
    name: [c.vendor, c.model ?? c.name].filter(Boolean).join(' ').trim() || 'unknown graphics controller',
    memoryTotalMiB: c.memoryTotal ?? c.vram ?? null,
    memoryUsedMiB: c.memoryUsed ?? null,
    memoryFreeMiB: c.memoryFree ?? null,
    utilizationPct: c.utilizationGpu ?? null,
    temperatureC: c.temperatureGpu ?? null,
    powerW: c.powerDraw ?? null,
    driverVersion: c.driverVersion || null,
    computeCapability: null,
    migMode: null,
    displayActive: null,
    migDevices: [],
  }));
  const fix =
    'Install the NVIDIA driver (it provides nvidia-smi) and the NVIDIA Container Toolkit, then run cs-llm gpu again; without a GPU, use cs-llm up --engine cpu or --engine sim.';
  if (gpus.length === 0) {
    return { source: 'none', gpus, usable: false, driverVersion: null, problem: `${reason}, and no graphics controller was found`, fix };
  }
  return {
    source: 'systeminformation',
    gpus,
    usable: false,
    driverVersion: null,
    problem: `${reason}; the ${gpus.length === 1 ? 'controller' : `${gpus.length} controllers`} listed come from systeminformation and are not usable by the NVIDIA engine`,
    fix,
  };
}

/** Runs nvidia-smi (and the fallback) and says what the NVIDIA engine can use. */
export async function detectGpus(options: DetectGpusOptions = {}): Promise<GpuReport> {
  let fields: readonly string[] = GPU_QUERY_FIELDS;
  let run = await runNvidiaSmi(queryArgs(fields), options);
  if (run.missing) {
    return fromSystemInformation(options, `nvidia-smi was not found${options.nvidiaSmi ? ` at ${options.nvidiaSmi}` : ' on PATH'}`);
  }
  if (!run.timedOut && run.exitCode !== 0 && /is not a valid field to query/i.test(run.output)) {
    // An old driver: ask again for the fields every driver knows.
    fields = GPU_QUERY_FIELDS_LEGACY;
    run = await runNvidiaSmi(queryArgs(fields), options);
  }
  if (run.timedOut) {
    return {
      source: 'nvidia-smi',
      gpus: [],
      usable: false,
      driverVersion: null,
      problem: `nvidia-smi did not answer within ${options.timeoutMs ?? DEFAULT_NVIDIA_SMI_TIMEOUT_MS} ms and was stopped`,
      fix: 'A hanging nvidia-smi usually means a GPU in a bad state: check dmesg for Xid errors, then reset the GPU (sudo nvidia-smi -r) or reboot.',
    };
  }
  if (run.exitCode !== 0 || /No devices were found/i.test(run.stdout)) {
    const failure = classifyNvidiaSmiFailure(run.output, run.exitCode);
    return { source: 'nvidia-smi', gpus: [], usable: false, driverVersion: null, problem: failure.problem, fix: failure.fix };
  }
  let gpus: GpuInfo[];
  try {
    gpus = parseNvidiaSmiCsv(run.stdout, fields);
  } catch (err) {
    return {
      source: 'nvidia-smi',
      gpus: [],
      usable: false,
      driverVersion: null,
      problem: (err as Error).message,
      fix: 'Run nvidia-smi yourself to see what it prints; an update of the NVIDIA driver may fix it.',
    };
  }
  const driverVersion = gpus.find((g) => g.driverVersion)?.driverVersion ?? null;
  const report: GpuReport = { source: 'nvidia-smi', gpus, usable: gpus.length > 0, driverVersion };
  if (gpus.length === 0) {
    return { ...report, problem: 'nvidia-smi listed no GPU', fix: 'Check that the GPU is seated and powered (lspci | grep -i nvidia).' };
  }
  const migGpus = gpus.filter((g) => g.migMode === 'enabled');
  if (migGpus.length > 0) {
    report.migEnabled = true;
    const list = await runNvidiaSmi(['-L'], options);
    if (!list.missing && !list.timedOut && list.exitCode === 0) {
      const byGpu = parseNvidiaSmiList(list.stdout);
      for (const gpu of migGpus) gpu.migDevices = byGpu.get(gpu.index) ?? [];
    }
    const names = migGpus.map((g) => `GPU ${g.index}`).join(', ');
    const slices = migGpus.flatMap((g) => g.migDevices.map((d) => d.profile));
    report.problem =
      `MIG is enabled on ${names}: the engine gets one MIG instance${slices.length ? ` (here: ${[...new Set(slices)].join(', ')})` : ''}, ` +
      'not the whole GPU, so estimates from the whole GPU memory are too high';
    report.fix = `Disable MIG for a whole-GPU engine (sudo nvidia-smi -i ${migGpus[0]!.index} -mig 0, then reset the GPU), or plan for one instance with cs-llm models --vram <instance size>.`;
  } else {
    report.migEnabled = false;
  }
  return report;
}
