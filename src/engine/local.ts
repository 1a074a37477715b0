/*
 * The simulator as a local process, for hosts without a Docker engine: `up --engine sim` still runs the
 * whole main job. The process is detached (it outlives `up`), its output goes to a log file, and a state
 * file records what `down`, `status` and `logs` need.
 */

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, statSync, writeFileSync, readSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { ConflictError, EnvironmentError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { ensurePrivateDir } from '../core/paths.js';
import { PACKAGE_ROOT } from '../core/version.js';
import { processStamp, recordedProcess, signalRecorded, type ProcessStamp, type RecordedProcess } from '../core/process-identity.js';
import { splitLogLines } from './diagnose.js';
import { engineKindInfo, type StageTimeouts } from './kinds.js';
import { completeOneToken, fetchServedModels, probeHealth } from './probes.js';
import { realClock, waitForReady, type ReadinessEvent, type ReadinessTarget, type TargetState } from './readiness.js';
import { configHashOf, engineArgs, type EngineSpecInput } from './spec.js';
import { isPortFree, type EngineEndpoint } from './container.js';
import { cpuEngineCommand, localEngineEnv, simulatorCommand } from './local-command.js';
import { cpuEngineArgs } from './cpu-spec.js';
import { engineKeyId } from './engine-key.js';

const log = createLogger('engine');

export interface LocalEngineState {
  pid: number;
  port: number;
  model: string;
  servedName: string;
  configHash: string;
  startedAt: string;
  logFile: string;
  command: string[];
  /** Fingerprint of the API key it was started with (engine-key.ts); reused only with that key on file. */
  keyId?: string;
  /** The process's start time and boot id: its PID is trusted and signalled only while they match. */
  startTicks?: ProcessStamp['startTicks'];
  bootId?: ProcessStamp['bootId'];
}

export interface LocalPaths {
  stateFile: string;
  logFile: string;
}

export function localPaths(stateDir: string): LocalPaths {
  return { stateFile: join(stateDir, 'engine-process.json'), logFile: join(stateDir, 'engine-process.log') };
}

export function readLocalState(paths: LocalPaths): LocalEngineState | null {
  try {
    return JSON.parse(readFileSync(paths.stateFile, 'utf8')) as LocalEngineState;
  } catch {
    return null;
  }
}

function writeLocalState(paths: LocalPaths, state: LocalEngineState): void {
  ensurePrivateDir(dirname(paths.stateFile));
  const tmp = `${paths.stateFile}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, paths.stateFile);
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped by its parent) still answers kill 0.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return true;
  }
}

function tailFile(file: string, n: number): string[] {
  try {
    const size = statSync(file).size;
    const length = Math.min(size, 256 * 1024);
    const fd = openSync(file, 'r');
    const buffer = Buffer.alloc(length);
    readSync(fd, buffer, 0, length, size - length);
    closeSync(fd);
    return splitLogLines(buffer.toString('utf8')).slice(-n);
  } catch {
    return [];
  }
}

/** Reads what was appended to a file since the last call. */
function fileFollower(file: string) {
  let offset = 0;
  let partial = '';
  return (): string[] => {
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      return [];
    }
    if (size <= offset) return [];
    const fd = openSync(file, 'r');
    const buffer = Buffer.alloc(size - offset);
    readSync(fd, buffer, 0, buffer.length, offset);
    closeSync(fd);
    offset = size;
    const text = partial + buffer.toString('utf8');
    const cut = Math.max(text.lastIndexOf('\n'), text.lastIndexOf('\r'));
    partial = cut >= 0 ? text.slice(cut + 1) : text;
    return cut >= 0 ? splitLogLines(text.slice(0, cut + 1)) : [];
  };
}

/** Whether the recorded PID is still the process we started (a state file written before start times were kept: the same command line). */
function sameCommand(state: LocalEngineState): (commandLine: string[]) => boolean {
  return (commandLine) => commandLine.join('\0') === state.command.join('\0');
}

function recorded(state: LocalEngineState): RecordedProcess {
  return recordedProcess(state, sameCommand(state));
}

/** SIGTERM, then SIGKILL after graceMs, to the recorded process only: a PID that another process holds now is left alone. */
async function stopRecorded(state: LocalEngineState, graceMs = 5000): Promise<void> {
  if (!signalRecorded(state, 'SIGTERM', sameCommand(state))) return;
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (recorded(state) !== 'running') return;
    await realClock.sleep(100);
  }
  signalRecorded(state, 'SIGKILL', sameCommand(state));
}

export interface LocalUpOptions {
  /** A fresh API key for a new process (see ContainerUpOptions.newApiKey). */
  newApiKey?: () => string;
  /** `up`'s environment, of which the process gets only what it needs (localEngineEnv). */
  env?: NodeJS.ProcessEnv;
  timeouts?: Partial<StageTimeouts>;
  onProgress?: (event: ReadinessEvent) => void;
  onNote?: (message: string) => void;
  signal?: AbortSignal;
}

export interface LocalUpResult extends EngineEndpoint {
  mode: 'process';
  pid: number;
  logFile: string;
  configHash: string;
  reused: boolean;
  replaced: boolean;
  readyInMs: number;
  apiKey: string | null;
}

function processTarget(
  pid: number,
  exitInfo: { code: number | null; exited: boolean; reaped?: Promise<unknown> },
  logFile: string,
  baseUrl: string,
  servedName: string,
  apiKey: string | undefined,
): ReadinessTarget {
  const follow = fileFollower(logFile);
  return {
    inspect: async (): Promise<TargetState> => {
      const running = !exitInfo.exited && isAlive(pid);
      // Gone, but node has not told us yet (a loaded machine): wait a moment for its exit code.
      if (!running && !exitInfo.exited && exitInfo.reaped) await Promise.race([exitInfo.reaped, delay(1000, undefined, { ref: false })]);
      return { running, restartCount: 0, exitCode: exitInfo.code, status: running ? 'running' : 'exited' };
    },
    drainLogLines: follow,
    lastLogLines: async (n) => tailFile(logFile, n),
    health: () => probeHealth(baseUrl),
    servedModels: () => fetchServedModels(baseUrl, apiKey),
    completeOneToken: () => completeOneToken(baseUrl, servedName, apiKey),
  };
}

export async function upLocalProcess(stateDir: string, input: EngineSpecInput, options: LocalUpOptions): Promise<LocalUpResult> {
  const paths = localPaths(stateDir);
  const configHash = configHashOf({ ...input, image: 'local-process' });
  const baseUrl = `http://127.0.0.1:${input.port}`;
  const endpoint = { mode: 'process' as const, baseUrl: `${baseUrl}/v1`, port: input.port, servedName: input.model.servedName };
  const timeouts = { ...engineKindInfo(input.kind === 'cpu' ? 'cpu' : 'sim').timeouts, ...options.timeouts };
  const previous = readLocalState(paths);
  // The configuration (kind included) decides reuse, so a reused process is of this kind too.
  const what = input.kind === 'cpu' ? 'cpu engine' : 'simulator';

  const keyId = input.apiKey ? engineKeyId(input.apiKey) : undefined;
  if (
    previous &&
    recorded(previous) === 'running' &&
    previous.configHash === configHash &&
    keyId !== undefined &&
    previous.keyId === keyId
  ) {
    options.onNote?.(`reusing the running ${what} process ${previous.pid} (same configuration)`);
    const target = processTarget(
      previous.pid,
      { code: null, exited: false },
      previous.logFile,
      baseUrl,
      input.model.servedName,
      input.apiKey,
    );
    const ready = await waitForReady(target, {
      servedName: input.model.servedName,
      timeouts,
      label: `${what} process ${previous.pid}`,
      onProgress: options.onProgress,
      signal: options.signal,
    }).catch(() => null);
    if (ready)
      return {
        ...endpoint,
        pid: previous.pid,
        logFile: previous.logFile,
        configHash,
        reused: true,
        replaced: false,
        readyInMs: ready.elapsedMs,
        apiKey: input.apiKey ?? null,
      };
    options.onNote?.(`the running ${what} does not answer; replacing it`);
  }
  if (previous) {
    if (recorded(previous) === 'running') options.onNote?.(`stopping the previous engine process ${previous.pid} (other configuration)`);
    await stopRecorded(previous);
    rmSync(paths.stateFile, { force: true });
  }
  if (!(await isPortFree(input.port))) {
    throw new ConflictError(`port ${input.port} on 127.0.0.1 is already in use, so the ${what} cannot listen there`, {
      next: `Pick another port with --port, or stop what listens on ${input.port} (ss -ltnp | grep :${input.port}).`,
    });
  }

  // The same vLLM command line as the container, but bound to loopback on the chosen port.
  const args = engineArgs({ ...input, kind: 'sim' });
  args.splice(0, 4, '--host', '127.0.0.1', '--port', String(input.port));
  // The cpu engine reads the GGUF where it lies on the host.
  const command =
    input.kind === 'cpu' && input.cpu
      ? [
          ...cpuEngineCommand(),
          ...cpuEngineArgs(
            {
              port: input.port,
              servedName: input.model.servedName,
              maxModelLen: input.maxModelLen,
              maxNumSeqs: input.maxNumSeqs,
              cpu: input.cpu,
            },
            '127.0.0.1',
            input.cpu.hostModelPath,
          ),
        ]
      : [...simulatorCommand(), ...args];
  ensurePrivateDir(stateDir);
  const logFd = openSync(paths.logFile, 'w', 0o600);
  // A new process, a new key; in its environment, not on its command line (which every local user can read).
  const apiKey = options.newApiKey ? options.newApiKey() : input.apiKey;
  const env = localEngineEnv(options.env ?? process.env, input, apiKey);
  const child = spawn(command[0]!, command.slice(1), { detached: true, stdio: ['ignore', logFd, logFd], env, cwd: PACKAGE_ROOT });
  closeSync(logFd);
  const exitInfo = { code: null as number | null, exited: false, reaped: once(child, 'exit').catch(() => undefined) };
  child.on('exit', (code) => {
    exitInfo.exited = true;
    exitInfo.code = code;
  });
  const spawned = await new Promise<Error | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (err) => resolve(err));
  });
  if (spawned || child.pid === undefined) {
    throw new EnvironmentError(`cannot start the ${what} process: ${spawned?.message ?? 'no pid'}`, {
      next: `Run ${command.join(' ')} by hand to see why.`,
    });
  }
  const pid = child.pid;
  log('%s process %d: %s', what, pid, command.join(' '));
  const state: LocalEngineState = {
    pid,
    port: input.port,
    model: input.model.id,
    servedName: input.model.servedName,
    configHash,
    startedAt: new Date().toISOString(),
    logFile: paths.logFile,
    command,
    ...processStamp(pid),
    ...(apiKey ? { keyId: engineKeyId(apiKey) } : {}),
  };
  writeLocalState(paths, state);
  const target = processTarget(pid, exitInfo, paths.logFile, baseUrl, input.model.servedName, apiKey);
  try {
    const ready = await waitForReady(target, {
      servedName: input.model.servedName,
      timeouts,
      label: `${what} process ${pid}`,
      onProgress: options.onProgress,
      signal: options.signal,
    });
    child.unref();
    return {
      ...endpoint,
      pid,
      logFile: paths.logFile,
      configHash,
      reused: false,
      replaced: previous !== null,
      readyInMs: ready.elapsedMs,
      apiKey: apiKey ?? null,
    };
  } catch (err) {
    await stopRecorded(state, 2000);
    rmSync(paths.stateFile, { force: true });
    throw err;
  }
}

export interface LocalStatus {
  mode: 'process';
  pid: number;
  state: 'running' | 'exited';
  health: 'ok' | 'loading' | 'down';
  model: string;
  servedName: string;
  port: number;
  baseUrl: string;
  startedAt: string;
  uptimeSeconds: number | null;
  logFile: string;
}

/** The engine process `up` started and that still runs (its recorded PID still that process), or null. */
export function runningLocalEngine(stateDir: string): LocalEngineState | null {
  const state = readLocalState(localPaths(stateDir));
  return state && recorded(state) === 'running' ? state : null;
}

export async function localStatus(stateDir: string, now = Date.now()): Promise<LocalStatus | null> {
  const state = readLocalState(localPaths(stateDir));
  if (!state) return null;
  const running = recorded(state) === 'running';
  return {
    mode: 'process',
    pid: state.pid,
    state: running ? 'running' : 'exited',
    health: running ? await probeHealth(`http://127.0.0.1:${state.port}`, 2000) : 'down',
    model: state.model,
    servedName: state.servedName,
    port: state.port,
    baseUrl: `http://127.0.0.1:${state.port}/v1`,
    startedAt: state.startedAt,
    uptimeSeconds: running ? Math.max(0, Math.round((now - Date.parse(state.startedAt)) / 1000)) : null,
    logFile: state.logFile,
  };
}

/** Stops the engine process (the cpu engine or the simulator); its pid when there was one. */
export async function downLocalProcess(stateDir: string, purge: boolean): Promise<{ pid: number } | null> {
  const paths = localPaths(stateDir);
  const state = readLocalState(paths);
  if (!state) return null;
  await stopRecorded(state);
  rmSync(paths.stateFile, { force: true });
  if (purge) rmSync(paths.logFile, { force: true });
  return { pid: state.pid };
}

export async function localLogs(
  stateDir: string,
  options: { follow: boolean; tail?: number; stdout: Writable; signal?: AbortSignal },
): Promise<boolean> {
  const state = readLocalState(localPaths(stateDir));
  const file = state?.logFile ?? localPaths(stateDir).logFile;
  if (!existsSync(file)) return false;
  for (const line of tailFile(file, options.tail ?? 10_000)) options.stdout.write(`${line}\n`);
  if (!options.follow) return true;
  const follow = fileFollower(file);
  follow(); // skip what was printed
  while (!options.signal?.aborted) {
    for (const line of follow()) options.stdout.write(`${line}\n`);
    if (state && recorded(state) !== 'running') break;
    await realClock.sleep(250, options.signal);
  }
  return true;
}
