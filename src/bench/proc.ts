// What the bench reads of its child processes from /proc (Linux): their CPU time and resident memory.

import { readFileSync } from 'node:fs';

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux); null elsewhere. */
export function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the command name; in clock ticks (100/s).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/**
 * A process's resident memory now, its peak (VmRSS, VmHWM) and the part of it that is its own (RssAnon: not
 * the file pages of node's binary and the libraries it maps, which the kernel can drop), in MiB, from /proc (Linux).
 */
export function rssMiB(pid: number | undefined): { now: number; peak: number; anon: number } | null {
  if (pid === undefined) return null;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { now: kb('VmRSS') / 1024, peak: kb('VmHWM') / 1024, anon: kb('RssAnon') / 1024 };
  } catch {
    return null;
  }
}
