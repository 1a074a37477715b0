import type Docker from 'dockerode';
import type { Config } from '../core/config.js';
import type { Paths } from '../core/paths.js';
import { createDockerClient, probeDocker, type DockerProbe } from '../engine/docker.js';
import { probeGpuRuntime, type GpuRuntimeProbe } from '../engine/gpu-preflight.js';
import { OLD_DRIVER_FIX, oldDriverWarning } from '../engine/driver-cuda.js';
import { runningLocalEngine } from '../engine/local.js';
import { modelCacheDir } from '../engine/model-files.js';
import type { Check, CheckName } from './check.js';
import { CDI_DIRS, checkNvidiaRuntime } from './nvidia-runtime.js';
import { checkStateFiles } from './state-files.js';
import { checkStore } from './store.js';
import { LABEL, instanceIdFor } from '../engine/spec.js';
import { detectGpus, gpuStackBroken, type GpuReport } from '../gpu/detect.js';
import { loadCatalog } from '../models/catalog.js';
import { formatGiB } from '../models/fit.js';
import type { Catalog } from '../models/schema.js';
import { probePort } from '../core/ports.js';
import { freeDisk } from '../core/disk.js';
import { daemonProcess, readDaemonState } from '../daemon/lifecycle.js';
import { storeFile } from '../store/store.js';

export { isPortFree, probePort } from '../core/ports.js';
export { modelCacheDir };
export { CHECK_NAMES, type Check, type CheckName, type CheckStatus } from './check.js';
export { checkNvidiaRuntime } from './nvidia-runtime.js';

/**
 * The doctor's checks: what `up` needs from this host, each with what was found and how to fix it. Checks
 * never throw for a host problem; they report it. `neededByUp` marks the checks whose failure stops `up`.
 * The NVIDIA container runtime check is in nvidia-runtime.ts.
 */
export const MIN_NODE_VERSION = '20.18.0';
/** DeviceRequests (the --gpus of the API) arrived in 1.40; 1.41 is Docker 20.10, the oldest we test on. */
export const MIN_DOCKER_API = '1.40';
export const GOOD_DOCKER_API = '1.41';
/** Below this the host is about full: state, logs and image layers fail to write. */
export const MIN_FREE_DISK_BYTES = 1024 ** 3;
export interface RunChecksOptions {
  config: Config;
  paths: Paths;
  docker?: Docker;
  env?: NodeJS.ProcessEnv;
  /** A report already taken (up detects once and passes it). */
  gpuReport?: GpuReport;
  /** Run only these checks, by name. */
  only?: string[];
  /** For tests: where CDI specs are looked for. */
  cdiDirs?: string[];
  catalog?: Catalog;
  nodeVersion?: string;
  /**
   * Ask Docker itself whether it accepts a GPU request (a container that never runs, created and removed,
   * about a second) when GPUs and the engine are there. Default true.
   */
  askDockerForGpus?: boolean;
}

/** Compares dotted versions numerically: "1.41" > "1.9". */
export function compareVersions(a: string, b: string): number {
  const pa = a
    .replace(/^v/, '')
    .split('.')
    .map((n) => Number.parseInt(n, 10) || 0);
  const pb = b
    .replace(/^v/, '')
    .split('.')
    .map((n) => Number.parseInt(n, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export function checkNode(version: string): Check {
  const ok = compareVersions(version, MIN_NODE_VERSION) >= 0;
  return {
    name: 'node',
    status: ok ? 'ok' : 'fail',
    detail: `Node.js ${version.replace(/^v/, '')}${ok ? '' : `; cs-llm needs ${MIN_NODE_VERSION} or newer`}`,
    fix: ok ? null : `Install Node.js ${MIN_NODE_VERSION} or newer (e.g. the current 20.x or 22.x LTS).`,
    neededByUp: true,
  };
}

/**
 * Docker is needed by `up` only for vllm: without it, `up` runs the cpu engine and the simulator as local
 * processes (and engine auto chooses cpu), so for those kinds a missing Docker fails the check, not `up`.
 */
export function checkDocker(probe: DockerProbe, engineKind: Config['engine']['kind'] = 'vllm'): Check {
  return {
    name: 'docker',
    status: probe.reachable ? 'ok' : 'fail',
    detail: probe.detail,
    fix: probe.reachable ? null : (probe.fix ?? 'Start the Docker daemon.'),
    neededByUp: engineKind === 'vllm',
  };
}

export function checkDockerApi(probe: DockerProbe): Check {
  if (!probe.reachable || !probe.apiVersion) {
    return { name: 'docker-api', status: 'warn', detail: 'not checked: the Docker Engine did not answer', fix: null, neededByUp: true };
  }
  const v = probe.apiVersion;
  if (compareVersions(v, MIN_DOCKER_API) < 0) {
    return {
      name: 'docker-api',
      status: 'fail',
      detail: `Docker Engine API ${v}; GPU device requests need API ${MIN_DOCKER_API} (Docker 19.03) or newer`,
      fix: 'Upgrade Docker Engine (20.10 or newer).',
      neededByUp: true,
    };
  }
  const old = compareVersions(v, GOOD_DOCKER_API) < 0;
  return {
    name: 'docker-api',
    status: old ? 'warn' : 'ok',
    detail: `Docker Engine API ${v}${probe.serverVersion ? ` (Docker ${probe.serverVersion})` : ''}${old ? `; cs-llm is tested on ${GOOD_DOCKER_API} and newer` : ''}`,
    fix: old ? 'Upgrade Docker Engine to 20.10 or newer.' : null,
    neededByUp: true,
  };
}

export function checkGpu(report: GpuReport): Check {
  const base = { name: 'gpu' as const, neededByUp: false };
  if (gpuStackBroken(report)) {
    // up --engine auto refuses such a host too (src/engine/auto.ts): the repair, or an explicit cpu engine.
    return {
      name: 'gpu',
      neededByUp: true,
      status: 'fail',
      detail: `nvidia-smi is installed but fails: ${report.problem ?? 'no GPU listed'}`,
      fix: `${report.fix ?? 'Repair the NVIDIA driver (nvidia-smi must list the GPUs).'} To run without the GPU meanwhile: cs-llm up --engine cpu.`,
    };
  }
  if (!report.usable || report.gpus.length === 0) {
    const seen = report.gpus.length ? ` (seen by ${report.source}: ${report.gpus.map((g) => g.name).join(', ')})` : '';
    return {
      ...base,
      status: 'warn',
      detail: `no GPU usable by the NVIDIA engine${seen}: ${report.problem ?? 'nothing found'}`,
      fix: report.fix ?? 'Without a GPU, cs-llm up --engine cpu or --engine sim still works.',
    };
  }
  const names = report.gpus.map((g) => {
    const mem = g.memoryTotalMiB !== null ? ` ${formatGiB(g.memoryTotalMiB * 1024 ** 2)}` : '';
    const display = g.displayActive ? ', drives a display' : '';
    return `GPU ${g.index} ${g.name}${mem}${g.computeCapability ? ` (compute ${g.computeCapability}${display})` : display ? ` (${display.slice(2)})` : ''}`;
  });
  const driver = report.driverVersion ? `; driver ${report.driverVersion}` : '';
  if (report.problem) {
    return { ...base, status: 'warn', detail: `${names.join('; ')}${driver}; ${report.problem}`, fix: report.fix ?? null };
  }
  const oldDriver = oldDriverWarning(report.driverVersion);
  if (oldDriver) return { ...base, status: 'warn', detail: `${names.join('; ')}; ${oldDriver}`, fix: OLD_DRIVER_FIX };
  return { ...base, status: 'ok', detail: `${names.join('; ')}${driver}`, fix: null };
}

export async function checkDisk(dir: string, catalog: Catalog | null): Promise<Check> {
  const base = { name: 'disk' as const, neededByUp: true };
  const { at, freeBytes, error } = await freeDisk(dir);
  if (freeBytes === null) {
    return { ...base, status: 'warn', detail: `cannot read free space at ${at}: ${error}`, fix: null };
  }
  const where = at === dir ? dir : `${dir} (on the file system of ${at})`;
  const sizes = (catalog?.models ?? []).filter((m) => m.engines.includes('vllm')).map((m) => m.weightsBytes);
  const largest = sizes.length ? Math.max(...sizes) : 0;
  const fitting = (catalog?.models ?? []).filter((m) => m.engines.includes('vllm') && m.weightsBytes * 1.05 < freeBytes);
  const detail = `${formatGiB(freeBytes)} free for the model cache at ${where}`;
  if (freeBytes < MIN_FREE_DISK_BYTES) {
    return {
      ...base,
      status: 'fail',
      detail: `${detail}; the disk is about full`,
      fix: `Free space on that disk, or set engine.hfCacheDir to a disk with room.`,
    };
  }
  if (largest > 0 && freeBytes < largest * 1.05) {
    const can = fitting.length ? `room for ${fitting.map((m) => m.id).join(', ')}` : 'room for no catalog model';
    return {
      ...base,
      status: 'warn',
      detail: `${detail}: ${can}, not for the largest (${formatGiB(largest)})`,
      fix: 'Free space, or set engine.hfCacheDir (CS_LLM_ENGINE_HF_CACHE_DIR) to a larger disk.',
    };
  }
  return { ...base, status: 'ok', detail, fix: null };
}

export async function checkPort(
  name: 'engine-port' | 'daemon-port',
  port: number,
  host = '127.0.0.1',
  /** Asked only when the port is taken: is it cs-llm's own engine or daemon? A description, or null. */
  ourOwnUse: () => Promise<string | null> | string | null = () => null,
): Promise<Check> {
  const base = { name, neededByUp: true };
  const what = name === 'engine-port' ? 'engine' : 'daemon';
  const key = name === 'engine-port' ? 'engine.port' : 'daemon.port';
  const probe = await probePort(port, host);
  if (probe.free) return { ...base, status: 'ok', detail: `${what} port ${port} is free on ${host}`, fix: null };
  const ownUse = probe.code === 'EADDRINUSE' ? await ourOwnUse() : null;
  if (ownUse) {
    // Taken by cs-llm itself (a running engine or daemon): up reuses or replaces it.
    return { ...base, status: 'ok', detail: `${what} port ${port} is in use by ${ownUse}`, fix: null };
  }
  if (probe.code === 'EADDRINUSE') {
    return {
      ...base,
      status: 'fail',
      detail: `${what} port ${port} is in use by another process on ${host}`,
      fix: `Pick another port (--port, or ${key} in the config), or stop what listens there (ss -ltnp 'sport = :${port}').`,
    };
  }
  return {
    ...base,
    status: 'fail',
    detail: `cannot listen on ${host}:${port} for the ${what} (${probe.code})`,
    fix: `Pick another port (${key} in the config)${probe.code === 'EACCES' ? '; ports below 1024 need root' : ''}.`,
  };
}

/**
 * The running engine of ours that holds the port, described; null when none: the local process `up` runs
 * without Docker (the CPU engine, the simulator), found by its state file, or a container found by its labels.
 */
async function ownEngineOnPort(docker: Docker | null, paths: Paths, port: number): Promise<string | null> {
  const local = runningLocalEngine(paths.stateDir);
  if (local && local.port === port) {
    return `cs-llm's running engine (local process ${local.pid}, model ${local.model}); up reuses or replaces it, cs-llm down stops it`;
  }
  if (!docker) return null;
  try {
    const containers = await Promise.race([
      docker.listContainers({ filters: { label: [`${LABEL.managed}=true`, `${LABEL.port}=${port}`] } }),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('timeout')), 3000).unref()),
    ]);
    const running = containers.find((c) => c.State === 'running');
    if (!running) return null;
    const name = running.Names[0]?.replace(/^\//, '') ?? running.Id.slice(0, 12);
    const model = running.Labels[LABEL.model];
    return `cs-llm's running engine (container ${name}${model ? `, model ${model}` : ''}); up reuses or replaces it`;
  } catch {
    return null;
  }
}

/**
 * The running cs-llm daemon that holds the port, described; null when none. Reads the daemon's state file
 * ({pid, url}, written by the daemon once it listens) and checks that its pid is still that daemon.
 */
function ownDaemonOnPort(paths: Paths, port: number): string | null {
  const state = readDaemonState(paths);
  if (!state || daemonProcess(state) !== 'running') return null;
  try {
    if (Number(new URL(state.url).port) !== port) return null;
  } catch {
    return null;
  }
  return `the running cs-llm daemon (pid ${state.pid}, ${state.url}); cs-llm daemon stop frees it`;
}

/** Runs the checks (all, or `only` those named) in a fixed order. */
export async function runChecks(options: RunChecksOptions): Promise<Check[]> {
  const env = options.env ?? process.env;
  const wanted = (name: CheckName) => !options.only || options.only.includes(name);
  const needDocker = wanted('docker') || wanted('docker-api') || wanted('nvidia-runtime');
  const needGpus = wanted('gpu') || wanted('nvidia-runtime');
  const docker = needDocker || wanted('engine-port') ? (options.docker ?? createDockerClient(env)) : null;
  const [probe, gpuReport] = await Promise.all([
    needDocker ? probeDocker(docker!, env) : Promise.resolve(null),
    needGpus ? (options.gpuReport ? Promise.resolve(options.gpuReport) : detectGpus({ env })) : Promise.resolve(null),
  ]);
  let catalog: Catalog | null = options.catalog ?? null;
  if (!catalog && wanted('disk')) {
    try {
      catalog = loadCatalog({ userModels: options.config.models });
    } catch {
      catalog = null; // a bad user entry is reported by `cs-llm models`; the disk check goes on without it
    }
  }
  const checks: Check[] = [];
  if (wanted('node')) checks.push(checkNode(options.nodeVersion ?? process.versions.node));
  if (wanted('docker')) checks.push(checkDocker(probe!, options.config.engine.kind));
  if (wanted('docker-api')) checks.push(checkDockerApi(probe!));
  if (wanted('nvidia-runtime')) {
    let dockerAnswer: GpuRuntimeProbe | null = null;
    if ((options.askDockerForGpus ?? true) && probe?.reachable && gpuReport!.usable && gpuReport!.gpus.length > 0) {
      dockerAnswer = await probeGpuRuntime(docker!, { mode: 'all' }, instanceIdFor(options.paths.home)).catch(
        (err: unknown): GpuRuntimeProbe => ({ verdict: 'unknown', reason: (err as Error).message }),
      );
    }
    checks.push(checkNvidiaRuntime({ probe, gpuReport: gpuReport!, env, cdiDirs: options.cdiDirs ?? CDI_DIRS, dockerAnswer }));
  }
  if (wanted('gpu')) checks.push(checkGpu(gpuReport!));
  if (wanted('disk')) checks.push(await checkDisk(modelCacheDir(options.config, env), catalog));
  if (wanted('engine-port')) {
    const port = options.config.engine.port;
    const ours = () => ownEngineOnPort(probe && !probe.reachable ? null : docker, options.paths, port);
    checks.push(await checkPort('engine-port', port, '127.0.0.1', ours));
  }
  if (wanted('daemon-port')) {
    const { port, host } = options.config.daemon;
    checks.push(await checkPort('daemon-port', port, host, () => ownDaemonOnPort(options.paths, port)));
  }
  const store = storeFile(options.config, options.paths);
  if (wanted('store')) checks.push(await checkStore(store));
  if (wanted('state-files')) checks.push(checkStateFiles(options.paths.stateDir, store));
  // One key order for every check, whatever order each was built in.
  return checks.map(({ name, status, detail, fix, neededByUp }) => ({ name, status, detail, fix, neededByUp }));
}

/** True when a check that `up` needs failed. */
export function blocksUp(checks: Check[]): boolean {
  return checks.some((c) => c.neededByUp && c.status === 'fail');
}
