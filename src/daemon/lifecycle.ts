/*
 * The daemon as a background process: a state file (pid, url) in the state directory, the log next to it.
 * `daemon run` writes the state file once it listens and removes it when it stops, so a reader always
 * finds the real URL (also with --port 0). A stale file (left by a crash, or from before a reboot) is
 * recognised by its process: gone, or its PID now held by another process (the start time and boot id kept
 * with the PID no longer match), and such a PID is never signalled.
 */

import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  openSync,
  readFileSync,
  readSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
  fstatSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConflictError, EnvironmentError, TimeoutError } from '../core/errors.js';
import { ensurePrivateDir, type Paths } from '../core/paths.js';
import { processStamp, recordedProcess, signalRecorded, type RecordedProcess } from '../core/process-identity.js';

export interface DaemonState {
  pid: number;
  url: string;
  startedAt: string;
  upstream?: string;
  db?: string;
  /** The process's start time (/proc/PID/stat field 22) and the boot id: see core/process-identity.ts. */
  startTicks?: string;
  bootId?: string;
}

/** The state file of the daemon process calling it. */
export function ownDaemonState(fields: Omit<DaemonState, 'pid' | 'startTicks' | 'bootId'>): DaemonState {
  return { pid: process.pid, ...processStamp(process.pid), ...fields };
}

/** A state file written before start times were kept: trusted only if its PID runs `cs-llm ... daemon run` now. */
function looksLikeDaemon(commandLine: string[]): boolean {
  const i = commandLine.indexOf('daemon');
  return i > 0 && commandLine[i + 1] === 'run' && commandLine.some((arg) => /cs-llm|cli[/\\]main\.[jt]s$/.test(arg));
}

/** Whether the daemon a state file names is still that process. */
export function daemonProcess(state: DaemonState): RecordedProcess {
  return recordedProcess(state, looksLikeDaemon);
}

export function readDaemonState(paths: Pick<Paths, 'daemonStateFile'>): DaemonState | null {
  let text: string;
  try {
    text = readFileSync(paths.daemonStateFile, 'utf8');
  } catch {
    return null;
  }
  try {
    const state = JSON.parse(text) as DaemonState;
    return typeof state.pid === 'number' && typeof state.url === 'string' ? state : null;
  } catch {
    return null;
  }
}

export function writeDaemonState(paths: Pick<Paths, 'daemonStateFile'>, state: DaemonState): void {
  ensurePrivateDir(dirname(paths.daemonStateFile));
  // Write-then-rename: a reader never sees half a file.
  const tmp = `${paths.daemonStateFile}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, paths.daemonStateFile);
}

/** Removes the state file if it still names `pid` (a newer daemon's file is left alone). */
export function removeDaemonState(paths: Pick<Paths, 'daemonStateFile'>, pid: number): void {
  if (readDaemonState(paths)?.pid !== pid) return;
  try {
    unlinkSync(paths.daemonStateFile);
  } catch {
    // already gone
  }
}

/** true when something answers /healthz at url (401 counts: a daemon with keys still answers). */
export async function answersHealth(url: string, timeoutMs = 1000): Promise<boolean> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status === 200 || res.status === 401;
  } catch {
    return false;
  }
}

export interface DaemonStatus {
  running: boolean;
  pid: number | null;
  url: string | null;
  startedAt: string | null;
  /** Whether /healthz answered; null when not running. */
  healthy: boolean | null;
  /** A state file was left by a daemon that is gone (it is removed). */
  stale: boolean;
  /** Why a stale file was stale: its process exited, or its PID belongs to another process now. */
  staleReason?: 'exited' | 'pid-reused';
}

export async function daemonStatus(paths: Pick<Paths, 'daemonStateFile'>): Promise<DaemonStatus> {
  const state = readDaemonState(paths);
  if (!state) return { running: false, pid: null, url: null, startedAt: null, healthy: null, stale: false };
  const now = daemonProcess(state);
  if (now !== 'running') {
    removeDaemonState(paths, state.pid);
    return {
      running: false,
      pid: state.pid,
      url: state.url,
      startedAt: state.startedAt,
      healthy: null,
      stale: true,
      staleReason: now === 'gone' ? 'exited' : 'pid-reused',
    };
  }
  return {
    running: true,
    pid: state.pid,
    url: state.url,
    startedAt: state.startedAt,
    healthy: await answersHealth(state.url),
    stale: false,
  };
}

/** The command line that runs this copy of cs-llm: dist/cli/main.js, or src/cli/main.ts through tsx. */
export function cliCommand(): { command: string; args: string[] } {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) {
    const main = join(dirname(here), '..', 'cli', 'main.ts');
    return { command: process.execPath, args: ['--import', import.meta.resolve('tsx'), main] };
  }
  return { command: process.execPath, args: [join(dirname(here), '..', 'cli', 'main.js')] };
}

function readFrom(file: string, offset: number): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(offset, size - 64 * 1024);
    const buf = Buffer.alloc(Math.max(0, size - start));
    readSync(fd, buf, 0, buf.length, start);
    return buf.toString('utf8');
  } finally {
    closeSync(fd);
  }
}

export function logTail(file: string, offset: number, lines = 20): string[] {
  return readFrom(file, offset)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-lines);
}

export interface StartDetachedOptions {
  paths: Paths;
  /** Arguments after `cs-llm daemon run`, e.g. ['--port', '8080', '--upstream', url]. */
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** How long to wait for /healthz. */
  timeoutMs?: number;
}

/**
 * Starts `cs-llm daemon run` in the background (its own process group, output appended to the daemon log),
 * and waits until it has written its state file and answers /healthz. A daemon that exits or does not answer
 * in time is reported with the last lines of its log (and killed in the second case).
 */
export async function startDaemonDetached(options: StartDetachedOptions): Promise<{ pid: number; url: string }> {
  const { paths } = options;
  const timeoutMs = options.timeoutMs ?? 20_000;
  const current = await daemonStatus(paths);
  if (current.running) {
    throw new ConflictError(`the daemon is already running (pid ${current.pid}) at ${current.url}`, {
      next: 'Use it, or stop it first with cs-llm daemon stop.',
    });
  }
  ensurePrivateDir(dirname(paths.daemonLog));
  const offset = existsSync(paths.daemonLog) ? statSync(paths.daemonLog).size : 0;
  const out = openSync(paths.daemonLog, 'a', 0o600);
  const { command, args } = cliCommand();
  const child = spawn(command, [...args, 'daemon', 'run', ...(options.args ?? [])], {
    detached: true,
    stdio: ['ignore', out, out],
    env: options.env ?? process.env,
  });
  closeSync(out);
  let exited: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  child.once('exit', (code, signal) => {
    exited = { code, signal };
  });
  child.once('error', () => {
    exited = { code: null, signal: null };
  });
  child.unref();
  const pid = child.pid;
  const tail = () => logTail(paths.daemonLog, offset);
  if (pid === undefined) {
    throw new EnvironmentError(`could not start ${command}`, { next: 'Check that node is installed and runnable.', details: tail() });
  }

  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (exited) {
      const how = (exited as { code: number | null; signal: string | null }).signal ?? `code ${(exited as { code: number | null }).code}`;
      throw new EnvironmentError(`the daemon exited during start-up (${how})`, {
        next: `Read the lines below (full log: ${paths.daemonLog}); try cs-llm daemon run in the foreground.`,
        details: tail(),
      });
    }
    const state = readDaemonState(paths);
    if (state?.pid === pid && (await answersHealth(state.url))) return { pid, url: state.url };
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
  throw new TimeoutError(`the daemon did not answer /healthz within ${timeoutMs} ms`, timeoutMs, {
    next: `Read the lines below (full log: ${paths.daemonLog}); try cs-llm daemon run in the foreground.`,
    details: tail(),
  });
}

export interface StopResult {
  /** false when no daemon was running. */
  stopped: boolean;
  pid: number | null;
  /** true when it had to be killed after the grace period. */
  forced: boolean;
}

/** SIGTERM (the daemon drains and closes its database), then SIGKILL after timeoutMs. */
export async function stopDaemon(paths: Pick<Paths, 'daemonStateFile'>, options: { timeoutMs?: number } = {}): Promise<StopResult> {
  const state = readDaemonState(paths);
  if (!state) return { stopped: false, pid: null, forced: false };
  // Only ever the process that wrote the file: a PID reused by another process is left alone.
  if (!signalRecorded(state, 'SIGTERM', looksLikeDaemon)) {
    removeDaemonState(paths, state.pid);
    return { stopped: false, pid: state.pid, forced: false };
  }
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  while (Date.now() < deadline) {
    if (daemonProcess(state) !== 'running') {
      removeDaemonState(paths, state.pid);
      return { stopped: true, pid: state.pid, forced: false };
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  signalRecorded(state, 'SIGKILL', looksLikeDaemon);
  removeDaemonState(paths, state.pid);
  return { stopped: true, pid: state.pid, forced: true };
}
