/*
 * Which process a PID from a state file is now. A PID alone names whatever process holds it today: after a
 * crash or a reboot that can be anything, and signalling it kills a stranger. So state files keep the
 * process's start time with its PID (field 22 of /proc/PID/stat, clock ticks since boot, proc(5)) and the
 * boot id (/proc/sys/kernel/random/boot_id, which changes at every boot), and a reader trusts or signals the
 * PID only while both still match.
 */

import { readFileSync } from 'node:fs';

export interface ProcessStamp {
  /** /proc/PID/stat field 22 (starttime), as written there. */
  startTicks: string;
  bootId: string;
}

/** What a PID with its recorded stamp is now. */
export type RecordedProcess =
  /** The same process, still running. */
  | 'running'
  /** No such process (or a zombie: exited, not yet reaped). */
  | 'gone'
  /** The PID belongs to another process now (or a record without a stamp could not be recognised). */
  | 'replaced';

function readStat(pid: number): { state: string; startTicks: string } | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // Field 2 is the command name in parentheses and may itself hold spaces and ')': fields 3.. follow the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTicks = fields[22 - 3];
  return state && startTicks ? { state, startTicks } : null;
}

let cachedBootId: string | undefined;
function bootId(): string {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      cachedBootId = '';
    }
  }
  return cachedBootId;
}

const hasProcfs = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

/** The stamp of a running process, to record with its PID; undefined without /proc or when it is gone. */
export function processStamp(pid: number): ProcessStamp | undefined {
  const stat = readStat(pid);
  return stat ? { startTicks: stat.startTicks, bootId: bootId() } : undefined;
}

function signalZero(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function commandLine(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * What the process recorded as `pid` (with its stamp) is now. A record written before stamps were kept is
 * trusted only when `recognise` accepts the process's command line now. Without /proc (not Linux) nothing can
 * be checked beyond the PID being alive.
 */
export function recordedProcess(
  record: { pid: number } & Partial<ProcessStamp>,
  recognise: (commandLine: string[]) => boolean = () => false,
): RecordedProcess {
  if (!Number.isInteger(record.pid) || record.pid <= 0) return 'gone';
  if (!hasProcfs) return signalZero(record.pid) ? 'running' : 'gone';
  const stat = readStat(record.pid);
  if (!stat || stat.state === 'Z') return 'gone';
  if (record.startTicks === undefined) return recognise(commandLine(record.pid)) ? 'running' : 'replaced';
  if (stat.startTicks !== record.startTicks) return 'replaced';
  if (record.bootId && bootId() && record.bootId !== bootId()) return 'replaced';
  return 'running';
}

/**
 * Sends `signal` to the recorded process only if it is still that process; false when it is gone or the PID
 * now belongs to another. (Between the check and the kill only a PID reused within microseconds could slip
 * through; Node has no pidfd to close that gap.)
 */
export function signalRecorded(
  record: { pid: number } & Partial<ProcessStamp>,
  signal: NodeJS.Signals,
  recognise?: (c: string[]) => boolean,
): boolean {
  if (recordedProcess(record, recognise) !== 'running') return false;
  try {
    process.kill(record.pid, signal);
    return true;
  } catch {
    return false;
  }
}
