/*
 * Pure parsing of nvidia-smi's machine-readable output. Nothing here runs a process, so the parser is tested
 * on recorded text (test/fixtures/nvidia-smi).
 */

import { EnvironmentError } from '../core/errors.js';

/** The fields asked of `nvidia-smi --query-gpu`, in order. The first eleven are the issue's JSON fields. */
export const GPU_QUERY_FIELDS = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.used',
  'memory.free',
  'utilization.gpu',
  'temperature.gpu',
  'power.draw',
  'driver_version',
  'compute_cap',
  'mig.mode.current',
  'display_active',
] as const;

/** Drivers older than R510 do not know compute_cap (nor, on some, the MIG and display fields). */
export const GPU_QUERY_FIELDS_LEGACY = GPU_QUERY_FIELDS.filter(
  (f) => f !== 'compute_cap' && f !== 'mig.mode.current' && f !== 'display_active',
);

export type GpuQueryField = (typeof GPU_QUERY_FIELDS)[number];

export interface MigDevice {
  /** The MIG profile, e.g. "3g.40gb". */
  profile: string;
  uuid: string;
}

export interface GpuInfo {
  index: number;
  uuid: string | null;
  name: string;
  memoryTotalMiB: number | null;
  memoryUsedMiB: number | null;
  memoryFreeMiB: number | null;
  utilizationPct: number | null;
  temperatureC: number | null;
  powerW: number | null;
  driverVersion: string | null;
  /** As nvidia-smi prints it, e.g. "8.9"; compare with computeCapabilityNumber(). */
  computeCapability: string | null;
  /** Multi-Instance GPU mode; null where the GPU has no MIG (most cards) or the driver does not say. */
  migMode: 'enabled' | 'disabled' | null;
  /** True when the GPU drives a display: its memory is partly taken before any engine starts. */
  displayActive: boolean | null;
  /** MIG instances on this GPU (from `nvidia-smi -L`); empty when MIG is off. */
  migDevices: MigDevice[];
}

/**
 * nvidia-smi writes a bracketed word where a value is unknown: "[N/A]", "[Not Supported]",
 * "[Insufficient Permissions]", "[Unknown Error]", "[GPU requires reset]". Older drivers wrote "N/A" bare.
 */
function unknownValue(raw: string): boolean {
  return raw === '' || raw === 'N/A' || /^\[.*\]$/.test(raw);
}

function text(raw: string | undefined): string | null {
  if (raw === undefined) return null;
  const value = raw.trim();
  return unknownValue(value) ? null : value;
}

function num(raw: string | undefined): number | null {
  const value = text(raw);
  if (value === null) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function onOff(raw: string | undefined): boolean | null {
  const value = text(raw)?.toLowerCase();
  if (value === 'enabled') return true;
  if (value === 'disabled') return false;
  return null;
}

/**
 * Parses `--query-gpu=FIELDS --format=csv,noheader,nounits`: one line per GPU, values separated by ", ".
 * GPU names contain no ", ", so a plain split is exact. A line with the wrong number of values means the
 * output is not what we asked for, and says so rather than guessing.
 */
export function parseNvidiaSmiCsv(output: string, fields: readonly string[] = GPU_QUERY_FIELDS): GpuInfo[] {
  const gpus: GpuInfo[] = [];
  const lines = output.split(/\r?\n/).filter((line) => line.trim() !== '');
  for (const [lineNo, line] of lines.entries()) {
    const values = line.split(', ');
    if (values.length !== fields.length) {
      throw new EnvironmentError(
        `unexpected nvidia-smi output on line ${lineNo + 1}: ${values.length} values where ${fields.length} were asked for: "${line.trim()}"`,
        { next: 'Run nvidia-smi yourself to see what it prints; an update of the NVIDIA driver may fix it.' },
      );
    }
    const at = (field: string): string | undefined => {
      const i = fields.indexOf(field);
      return i === -1 ? undefined : values[i];
    };
    const index = num(at('index'));
    const mig = onOff(at('mig.mode.current'));
    gpus.push({
      index: index ?? lineNo,
      uuid: text(at('uuid')),
      name: text(at('name')) ?? 'unknown NVIDIA GPU',
      memoryTotalMiB: num(at('memory.total')),
      memoryUsedMiB: num(at('memory.used')),
      memoryFreeMiB: num(at('memory.free')),
      utilizationPct: num(at('utilization.gpu')),
      temperatureC: num(at('temperature.gpu')),
      powerW: num(at('power.draw')),
      driverVersion: text(at('driver_version')),
      computeCapability: text(at('compute_cap')),
      migMode: mig === null ? null : mig ? 'enabled' : 'disabled',
      displayActive: onOff(at('display_active')),
      migDevices: [],
    });
  }
  return gpus;
}

/**
 * Parses `nvidia-smi -L`, which lists each GPU and, under it, its MIG instances:
 *   GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-...)
 *     MIG 3g.40gb     Device  0: (UUID: MIG-...)
 * Returns the MIG instances by GPU index.
 */
export function parseNvidiaSmiList(output: string): Map<number, MigDevice[]> {
  const byGpu = new Map<number, MigDevice[]>();
  let current: number | null = null;
  for (const line of output.split(/\r?\n/)) {
    const gpu = /^GPU (\d+):/.exec(line);
    if (gpu) {
      current = Number(gpu[1]);
      byGpu.set(current, []);
      continue;
    }
    const mig = /^\s+MIG\s+(\S+)\s+Device\s+\d+:\s+\(UUID:\s*(MIG-[^)\s]+)\)/.exec(line);
    if (mig && current !== null) byGpu.get(current)!.push({ profile: mig[1]!, uuid: mig[2]! });
  }
  return byGpu;
}

/** "8.9" -> 8.9; null when unknown. */
export function computeCapabilityNumber(gpu: Pick<GpuInfo, 'computeCapability'>): number | null {
  if (gpu.computeCapability === null) return null;
  const n = Number(gpu.computeCapability);
  return Number.isFinite(n) ? n : null;
}

export type NvidiaSmiFailureKind =
  'driver' | 'no-devices' | 'permission' | 'nvml-missing' | 'version-mismatch' | 'gpu-lost' | 'invalid-field' | 'other';

export interface NvidiaSmiFailure {
  kind: NvidiaSmiFailureKind;
  problem: string;
  fix: string;
}

/**
 * What a failed nvidia-smi means and what to do, from its message (it prints errors on stdout) and its exit
 * code (nvidia-smi(1): 4 no permission, 6 not found, 9 driver not loaded, 12 NVML missing, 15 GPU lost).
 */
export function classifyNvidiaSmiFailure(output: string, exitCode: number | undefined): NvidiaSmiFailure {
  const message = output.trim().split(/\r?\n/).filter(Boolean).slice(0, 3).join(' ');
  const said = message ? `: "${message}"` : '';
  if (/is not a valid field to query/i.test(output)) {
    return {
      kind: 'invalid-field',
      problem: `nvidia-smi does not know a queried field${said}`,
      fix: 'Update the NVIDIA driver (R510 or newer reports compute capability).',
    };
  }
  if (/version mismatch/i.test(output)) {
    return {
      kind: 'version-mismatch',
      problem: `the NVIDIA kernel module and the user-space driver libraries differ in version${said}`,
      fix: 'Reboot so the updated kernel module loads (or reinstall the driver so both parts match).',
    };
  }
  if (/couldn't communicate with the NVIDIA driver|driver is not loaded|NVIDIA driver is not loaded/i.test(output) || exitCode === 9) {
    return {
      kind: 'driver',
      problem: `nvidia-smi cannot talk to the NVIDIA driver${said}`,
      fix: 'Install or load the NVIDIA driver (e.g. sudo apt install nvidia-driver-550, or sudo modprobe nvidia), then reboot if it was just installed; check with nvidia-smi.',
    };
  }
  if (/No devices were found/i.test(output) || exitCode === 6) {
    return {
      kind: 'no-devices',
      problem: `the NVIDIA driver is loaded but sees no GPU${said}`,
      fix: 'Check that the GPU is seated and powered (lspci | grep -i nvidia), that a container was given the GPU (--gpus), and dmesg for NVRM errors.',
    };
  }
  if (/Insufficient Permissions|permission denied|not have permission/i.test(output) || exitCode === 4) {
    return {
      kind: 'permission',
      problem: `nvidia-smi was refused access to the GPU devices${said}`,
      fix: 'Run as a user that can open /dev/nvidia* (often the video or render group: sudo usermod -aG video $USER), or as root.',
    };
  }
  if (/libnvidia-ml|NVML Shared Library/i.test(output) || exitCode === 12) {
    return {
      kind: 'nvml-missing',
      problem: `nvidia-smi cannot load the NVML library (libnvidia-ml.so)${said}`,
      fix: 'Reinstall the NVIDIA driver so libnvidia-ml.so is present, then run nvidia-smi to confirm.',
    };
  }
  if (/fallen off the bus|GPU is lost|requires reset/i.test(output) || exitCode === 15) {
    return {
      kind: 'gpu-lost',
      problem: `a GPU has fallen off the bus or needs a reset${said}`,
      fix: 'Check dmesg for Xid errors; reset the GPU (sudo nvidia-smi -r) or reboot the machine.',
    };
  }
  return {
    kind: 'other',
    problem: `nvidia-smi failed${exitCode === undefined ? '' : ` with exit code ${exitCode}`}${said}`,
    fix: 'Run nvidia-smi yourself to see the whole message; check dmesg for NVRM or Xid errors.',
  };
}
