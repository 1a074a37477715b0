/*
 * Creating a bundle's files under a root folder (the staging folder, the model's folder in the cache) so that
 * nothing is ever created through a link: every folder on the way is made one level at a time or must already
 * be a real folder (a link there is refused, never followed), the file itself is opened with O_CREAT, O_EXCL and
 * O_NOFOLLOW, and the real path of its folder must still lie under the root's. The manifest rules
 * (manifest.ts) already refuse a member under one of the bundle's own links; this holds even for a link that
 * was on disk before, or one that a rule missed.
 */

import { closeSync, constants, lstatSync, mkdirSync, openSync, readdirSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { join, sep } from 'node:path';
import { EnvironmentError } from '../core/errors.js';
import { processStamp, recordedProcess } from '../core/process-identity.js';

export const STAGING_PREFIX = '.cs-llm-bundle-';

/** A staging folder's name starts with the loading process's pid and start time (mkdtemp adds the rest). */
export function stagingPrefix(): string {
  return `${STAGING_PREFIX}${process.pid}-${processStamp(process.pid)?.startTicks ?? 0}-`;
}

/**
 * Removes the staging folders of loads that were killed (never visible as models, only wasted room) and
 * returns their names. A folder is a dead load's when its process is gone, or its pid now belongs to another
 * process (the start time in the name differs); a folder named before start times were kept, only when gone.
 */
export function removeStaleStaging(hubDir: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(hubDir)) {
    if (!name.startsWith(STAGING_PREFIX)) continue;
    const [pid, ticks, rest] = name.slice(STAGING_PREFIX.length).split('-');
    const record = rest !== undefined && /^\d+$/.test(ticks ?? '') ? { pid: Number(pid), startTicks: ticks } : { pid: Number(pid) };
    if (!Number.isInteger(record.pid) || record.pid <= 0 || record.pid === process.pid) continue;
    const now = recordedProcess(record, () => true);
    if (now === 'running') continue;
    rmSync(join(hubDir, name), { recursive: true, force: true });
    removed.push(name);
  }
  return removed;
}

function linkRefused(root: string, rel: string): EnvironmentError {
  return new EnvironmentError(`${rel} is a link, not a folder, in ${root}: nothing is created through a link`, {
    next: `Nothing of this model was put in place. Remove ${join(root, rel)} (a folder belongs there) and run bundle load again.`,
  });
}

function cleanParts(rel: string): string[] {
  const parts = rel.split('/').filter((p) => p !== '' && p !== '.');
  if (rel.startsWith('/') || parts.some((p) => p === '..' || p.includes('\\') || p.includes('\0'))) {
    throw new Error(`bundle staging: ${JSON.stringify(rel)} is not a clean relative path`);
  }
  return parts;
}

/** Makes `rel` (a folder path under root) level by level; an existing level must be a real folder. Returns its path. */
export function mkdirInside(root: string, rel: string, mode = 0o755): string {
  let path = root;
  const done: string[] = [];
  for (const part of cleanParts(rel)) {
    path = join(path, part);
    done.push(part);
    let stats;
    try {
      stats = lstatSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(path, { mode });
      continue;
    }
    if (stats.isSymbolicLink()) throw linkRefused(root, done.join('/'));
    if (!stats.isDirectory()) {
      throw new EnvironmentError(`${done.join('/')} is a file where the bundle needs a folder, in ${root}`, {
        next: `Nothing of this model was put in place. Move ${path} away and run bundle load again.`,
      });
    }
  }
  // Belt and braces: whatever the checks above missed, the folder really is under the root.
  const realRoot = realpathSync(root);
  const real = realpathSync(path);
  if (real !== realRoot && !real.startsWith(realRoot + sep)) throw linkRefused(root, rel);
  return path;
}

/** Creates a new file at `rel` under root (never an existing one, never through a link); the caller writes and closes it. */
export function openNewInside(root: string, rel: string, mode = 0o644): { path: string; fd: number; close(): void } {
  const parts = cleanParts(rel);
  const folder = mkdirInside(root, parts.slice(0, -1).join('/'));
  const path = join(folder, parts.at(-1)!);
  const fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  return { path, fd, close: () => closeSync(fd) };
}

/** Creates the link `rel` -> target under root (the link itself; its folder made as mkdirInside makes it). */
export function linkInside(root: string, rel: string, target: string): string {
  const parts = cleanParts(rel);
  const path = join(mkdirInside(root, parts.slice(0, -1).join('/')), parts.at(-1)!);
  symlinkSync(target, path);
  return path;
}
