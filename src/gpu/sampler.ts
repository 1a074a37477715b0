/*
 * Live GPU figures for /metrics: ONE long-lived `nvidia-smi --query-gpu=... -lms N` that prints a line per
 * GPU every interval, parsed line by line, instead of one process per sample. If it dies (driver reload, a
 * crash, no nvidia-smi at all) it is started again after a growing pause; while it is down the sampler
 * holds no figures, so the GPU gauges disappear instead of showing zeros that look like an idle GPU.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { createLogger } from '../core/log.js';
import { parseNvidiaSmiCsv, type GpuInfo } from './parse.js';

/** The fields the sampler asks for: the ones every supported driver knows. */
export const SAMPLER_FIELDS = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.used',
  'utilization.gpu',
  'temperature.gpu',
  'power.draw',
] as const;

export interface GpuSample {
  index: number;
  uuid: string | null;
  name: string;
  memoryTotalBytes: number | null;
  memoryUsedBytes: number | null;
  /** 0..1 */
  utilization: number | null;
  temperatureC: number | null;
  powerW: number | null;
  /** Date.now() of the line this came from. */
  at: number;
}

export interface GpuSamplerOptions {
  /** The nvidia-smi executable (default: looked up on PATH). */
  nvidiaSmi?: string;
  /** Environment for nvidia-smi, PATH included (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Sampling interval (default 1000 ms). */
  intervalMs?: number;
  /** First pause before a restart; doubles per failure up to maxBackoffMs (defaults 1 s and 60 s). */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A running nvidia-smi that prints nothing for this long is hung (a GPU in a bad state): it is killed and
   * started again (default: ten intervals, at least 10 s). */
  stallMs?: number;
  /** Called with every GPU line parsed (tests, the dashboard relay). */
  onSample?: (sample: GpuSample) => void;
  /** Called when nvidia-smi exits or cannot start; `restartInMs` is the pause before the next try. */
  onExit?: (info: { code: number | null; signal: string | null; error?: string; restartInMs: number }) => void;
}

export interface GpuSampler {
  /** The latest figures per GPU, index order; empty while nvidia-smi is not running or has not printed yet. */
  current(): GpuSample[];
  /** Times nvidia-smi was started. */
  readonly starts: number;
  stop(): Promise<void>;
}

const MIB = 1024 * 1024;
const log = createLogger('gpu:sampler');

export function sampleFromInfo(info: GpuInfo, at: number): GpuSample {
  return {
    index: info.index,
    uuid: info.uuid,
    name: info.name,
    memoryTotalBytes: info.memoryTotalMiB === null ? null : info.memoryTotalMiB * MIB,
    memoryUsedBytes: info.memoryUsedMiB === null ? null : info.memoryUsedMiB * MIB,
    utilization: info.utilizationPct === null ? null : info.utilizationPct / 100,
    temperatureC: info.temperatureC,
    powerW: info.powerW,
    at,
  };
}

export function samplerArgs(intervalMs: number): string[] {
  return [`--query-gpu=${SAMPLER_FIELDS.join(',')}`, '--format=csv,noheader,nounits', '-lms', String(intervalMs)];
}

/** Whether spawn() could find `file`: the path itself when it has a slash, else in one of PATH's directories. */
export function findable(file: string, env: NodeJS.ProcessEnv): boolean {
  if (file.includes('/')) return existsSync(file);
  for (const dir of (env.PATH ?? '').split(delimiter)) if (dir !== '' && existsSync(join(dir, file))) return true;
  return false;
}

export function startGpuSampler(options: GpuSamplerOptions = {}): GpuSampler {
  const file = options.nvidiaSmi ?? 'nvidia-smi';
  const intervalMs = options.intervalMs ?? 1000;
  const firstBackoff = options.backoffMs ?? 1000;
  const maxBackoff = options.maxBackoffMs ?? 60_000;
  const stallMs = options.stallMs ?? Math.max(10_000, intervalMs * 10);
  const latest = new Map<number, GpuSample>();
  let child: ChildProcess | null = null;
  let restartTimer: NodeJS.Timeout | null = null;
  let backoff = firstBackoff;
  let stopped = false;
  let starts = 0;
  let exited: Promise<void> = Promise.resolve();

  const scheduleRestart = (code: number | null, signal: string | null, error?: string) => {
    latest.clear();
    child = null;
    if (stopped) return;
    const restartInMs = backoff;
    backoff = Math.min(backoff * 2, maxBackoff);
    log(`nvidia-smi ended (${error ?? `code ${code}, signal ${signal}`}); again in ${restartInMs} ms`);
    options.onExit?.({ code, signal, ...(error ? { error } : {}), restartInMs });
    restartTimer = setTimeout(start, restartInMs);
    restartTimer.unref();
  };

  function start(): void {
    restartTimer = null;
    if (stopped) return;
    starts++;
    // Without nvidia-smi (no NVIDIA driver: a CPU engine's machine, the bench's) a spawn only fails, and each
    // costs the daemon a fork of itself, milliseconds of CPU: 3% of its CPU in the first minute of the bench
    // (#21). The file is looked for first; the same pauses apply, so a driver installed later is found.
    if (!findable(file, options.env ?? process.env)) {
      // Reported after startGpuSampler() returned, as a failed spawn's error is.
      process.nextTick(() => scheduleRestart(null, null, `${file} not found`));
      return;
    }
    let proc: ChildProcess;
    try {
      proc = spawn(file, samplerArgs(intervalMs), {
        stdio: ['ignore', 'pipe', 'ignore'],
        ...(options.env ? { env: options.env } : {}),
      });
    } catch (err) {
      scheduleRestart(null, null, (err as Error).message);
      return;
    }
    child = proc;
    let lastLineAt = Date.now();
    const watchdog = setInterval(
      () => {
        if (Date.now() - lastLineAt > stallMs) proc.kill('SIGKILL');
      },
      Math.min(stallMs, 1000),
    );
    watchdog.unref();
    // Never keeps the daemon (or a test) alive on its own.
    proc.unref();
    (proc.stdout as unknown as { unref?: () => void }).unref?.();
    let settled = false;
    exited = new Promise<void>((resolve) => {
      const finish = (code: number | null, signal: string | null, error?: string) => {
        if (settled) return;
        settled = true;
        clearInterval(watchdog);
        resolve();
        if (child === proc) scheduleRestart(code, signal, error);
      };
      proc.once('error', (err: NodeJS.ErrnoException) => finish(null, null, err.code === 'ENOENT' ? `${file} not found` : err.message));
      proc.once('close', (code, signal) => finish(code, signal));
    });
    const lines = createInterface({ input: proc.stdout! });
    lines.on('line', (line) => {
      lastLineAt = Date.now();
      if (line.trim() === '') return;
      let gpus: GpuInfo[];
      try {
        gpus = parseNvidiaSmiCsv(line, SAMPLER_FIELDS);
      } catch {
        // nvidia-smi prints its errors on stdout too ("No devices were found"): not a sample.
        return;
      }
      const now = Date.now();
      for (const gpu of gpus) {
        const sample = sampleFromInfo(gpu, now);
        latest.set(sample.index, sample);
        options.onSample?.(sample);
      }
      // A line arrived: nvidia-smi works, so the next failure starts from the short pause again.
      backoff = firstBackoff;
    });
  }

  start();

  return {
    current() {
      // A GPU that stopped appearing for three intervals is gone (or nvidia-smi stalls): no stale figures.
      const cutoff = Date.now() - intervalMs * 3 - 1000;
      const out: GpuSample[] = [];
      for (const sample of latest.values()) if (sample.at >= cutoff) out.push(sample);
      return out.sort((a, b) => a.index - b.index);
    },
    get starts() {
      return starts;
    },
    async stop() {
      stopped = true;
      if (restartTimer) clearTimeout(restartTimer);
      restartTimer = null;
      const running = child;
      child = null;
      latest.clear();
      if (running && running.exitCode === null && running.signalCode === null) {
        // Whoever awaits stop() waits for the exit, so the process is referenced again until then.
        running.ref();
        running.kill('SIGTERM');
        const killer = setTimeout(() => running.kill('SIGKILL'), 2000);
        await exited;
        clearTimeout(killer);
      }
    },
  };
}
