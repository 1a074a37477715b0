/*
 * The part file a download writes (`<file>.part`) and the lock that keeps a second pull off it
 * (`<file>.part.lock`). Neither path is followed through a symbolic link: a link planted at the part path
 * would have the download truncate or append to whatever it points to, and `rename` would then put the link
 * in place of the model. The lock appears whole and at once: its content (pid, start time, boot id) is
 * written to a file of our own (O_CREAT | O_EXCL | O_NOFOLLOW) that is then hard-linked to the lock's name,
 * which fails if a lock is there (link(2) is atomic). A lock whose process is gone, or whose pid another
 * process holds now, is removed by one breaker at a time, and only if it is still the very file that was
 * judged stale.
 */

import { randomBytes } from 'node:crypto';
import { constants, lstatSync } from 'node:fs';
import { link, lstat, open, rm, type FileHandle } from 'node:fs/promises';
import { processStamp, recordedProcess, type ProcessStamp } from '../core/process-identity.js';
import { ConflictError } from '../core/errors.js';

const NO_FOLLOW = constants.O_NOFOLLOW | constants.O_NONBLOCK;

function notRegular(path: string, what: string): ConflictError {
  return new ConflictError(`${path} is not a regular file (${what}); cs-llm models pull does not write through it`, {
    next: `Remove it (rm ${JSON.stringify(path)}; that removes the link, not what it points to) and run the command again.`,
  });
}

/** Bytes in the part file, 0 when there is none; a link or anything but a plain file there is refused. */
export function partFileSize(part: string): number {
  let stats;
  try {
    stats = lstatSync(part);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  if (stats.isSymbolicLink()) throw notRegular(part, 'a symbolic link');
  if (!stats.isFile()) throw notRegular(part, 'not a file');
  return stats.size;
}

/** Opens the part file without following a link at its path; append continues it, else it starts empty. */
export async function openPartFile(part: string, mode: 'append' | 'truncate' | 'read'): Promise<FileHandle> {
  const flags =
    mode === 'read'
      ? constants.O_RDONLY | NO_FOLLOW
      : constants.O_WRONLY | constants.O_CREAT | NO_FOLLOW | (mode === 'append' ? constants.O_APPEND : constants.O_TRUNC);
  let handle: FileHandle;
  try {
    handle = await open(part, flags, 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw notRegular(part, 'a symbolic link');
    throw err;
  }
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw notRegular(part, 'not a file');
  }
  return handle;
}

interface LockRecord extends Partial<ProcessStamp> {
  pid: number;
}

/** Locks written before start times were kept hold a bare pid: trust it only while that pid is a pull. */
const looksLikePull = (commandLine: string[]) => commandLine.includes('models') && commandLine.includes('pull');

/** The lock's inode and what it says, read without following a link; null when there is no lock. */
async function readLock(lockPath: string): Promise<{ ino: number; record: LockRecord | null } | null> {
  let handle: FileHandle;
  try {
    handle = await open(lockPath, constants.O_RDONLY | NO_FOLLOW);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    // A link, or something that will not open as a file: not a lock a pull wrote.
    const stats = await lstat(lockPath).catch(() => null);
    return stats ? { ino: stats.ino, record: null } : null;
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) return { ino: stats.ino, record: null };
    const buffer = Buffer.alloc(1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0);
    const text = buffer.subarray(0, bytesRead).toString('utf8').trim();
    let record: LockRecord | null = null;
    if (/^\d+$/.test(text)) record = { pid: Number(text) };
    else {
      try {
        const parsed = JSON.parse(text) as Partial<LockRecord>;
        if (typeof parsed.pid === 'number') record = { pid: parsed.pid, startTicks: parsed.startTicks, bootId: parsed.bootId };
      } catch {
        // Not a lock of ours: stale.
      }
    }
    return { ino: stats.ino, record };
  } finally {
    await handle.close();
  }
}

/** How long a breaker file may stay before it counts as left by a pull that died while breaking a lock. */
const BREAKER_STALE_MS = 10_000;

/**
 * Removes the stale lock, but only the file judged stale. Breakers take turns through `<lock>.break`
 * (O_EXCL), so no two remove at once: a lock taken meanwhile by another pull has another inode and stays.
 * (Moving the lock aside and putting a fresh one back, as before, left a moment with no lock at all, in which
 * a third pull could take it while the put-back failed: two pulls on one part file.)
 */
async function removeStale(lockPath: string, staleIno: number): Promise<void> {
  const breaker = `${lockPath}.break`;
  let handle: FileHandle;
  try {
    handle = await open(breaker, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    // Another pull is breaking it (a few milliseconds); a breaker file that old was left by one that died.
    const stats = await lstat(breaker).catch(() => null);
    if (stats && Date.now() - stats.mtimeMs > BREAKER_STALE_MS) await rm(breaker, { force: true });
    else await new Promise((resolve) => setTimeout(resolve, 10));
    return;
  }
  await handle.close();
  try {
    if ((await lstat(lockPath).catch(() => null))?.ino === staleIno) await rm(lockPath, { force: true });
  } finally {
    await rm(breaker, { force: true });
  }
}

/** Takes the lock of a part file, or refuses while another pull holds it; resolves with its release. */
export async function takePartLock(lockPath: string, part: string): Promise<() => Promise<void>> {
  const mine = `${lockPath}.${process.pid}-${randomBytes(4).toString('hex')}`;
  const record: LockRecord = { pid: process.pid, ...processStamp(process.pid) };
  const handle = await open(mine, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(record)}\n`);
  } finally {
    await handle.close();
  }
  const ownIno = (await lstat(mine)).ino;
  try {
    // Each round either takes the lock, refuses, or removes (or waits out) a stale one: a few dozen are plenty.
    for (let attempt = 0; attempt < 50; attempt++) {
      try {
        await link(mine, lockPath);
        return async () => {
          // Only our own lock: a lock someone moved aside as stale and retook is not ours to remove.
          const now = await lstat(lockPath).catch(() => null);
          if (now?.ino === ownIno) await rm(lockPath, { force: true });
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const held = await readLock(lockPath);
      if (!held) continue;
      if (held.record && recordedProcess(held.record, looksLikePull) === 'running') {
        throw new ConflictError(`another cs-llm models pull (pid ${held.record.pid}) is writing ${part}`, {
          next: `Wait for it to finish; if no such download runs, remove ${lockPath} and run the command again.`,
        });
      }
      // Left by a pull that died, or its pid belongs to another process now: take it over.
      await removeStale(lockPath, held.ino);
    }
    throw new ConflictError(`cannot take the lock ${lockPath}: it keeps changing`, {
      next: `Remove ${lockPath} and run the command again.`,
    });
  } finally {
    await rm(mine, { force: true });
  }
}
