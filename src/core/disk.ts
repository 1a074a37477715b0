import { existsSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

/** The path itself, or its closest parent that exists (a cache dir may not be created yet). */
export function nearestExisting(path: string): string {
  let current = path;
  while (!existsSync(current)) {
    const parent = dirname(current);
    if (parent === current) break;
    current = parent;
  }
  return current;
}

export interface FreeDisk {
  /** Where it was measured: the path or its nearest existing parent. */
  at: string;
  /** Bytes an unprivileged writer can use there; null when the file system would not say. */
  freeBytes: number | null;
  error?: string;
}

/** Free space for the file system holding path; never throws, callers decide what an unknown means. */
export async function freeDisk(path: string): Promise<FreeDisk> {
  const at = nearestExisting(path);
  try {
    const stats = await statfs(at);
    return { at, freeBytes: Number(stats.bavail) * Number(stats.bsize) };
  } catch (err) {
    return { at, freeBytes: null, error: (err as Error).message };
  }
}
