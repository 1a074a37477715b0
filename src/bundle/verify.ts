/*
 * `bundle inspect`: read the manifest (the first member) and check every member against it, streaming:
 * present, the right kind, not cut short, the announced size, the sha256. Problems name the member.
 */

import { open } from 'node:fs/promises';
import { EnvironmentError, NotFoundError, type CsLlmErrorOptions } from '../core/errors.js';
import { hashRange, NotATarError, readArchiveIndex, type ArchiveEntry, type ArchiveIndex } from './archive.js';
import { describeManifestIssue, MANIFEST_MEMBER, manifestSchema, type BundleManifest } from './manifest.js';
import { byteCounter, throwIfCancelled, type BundleProgressListener } from './progress.js';

/** A bundle that does not match its manifest; `problems` names each bad member. */
export class BundleIntegrityError extends EnvironmentError {
  readonly problems: string[];
  constructor(message: string, problems: string[], options: CsLlmErrorOptions = {}) {
    super(message, { ...options, details: problems });
    this.problems = problems;
  }
}

export interface OpenedBundle {
  file: string;
  manifest: BundleManifest;
  index: ArchiveIndex;
  /** Archive entries by path. */
  entries: Map<string, ArchiveEntry>;
}

const MAX_MANIFEST_BYTES = 64 * 1024 * 1024;

function notABundle(file: string, why: string): BundleIntegrityError {
  return new BundleIntegrityError(`${file} is not a readable cs-llm bundle: ${why}`, [why], {
    next: 'Check that the file was copied completely (compare sha256sum with the original), or create the bundle again.',
  });
}

/** Reads the archive's headers and its manifest; does not read member data. */
export async function openBundle(file: string): Promise<OpenedBundle> {
  let index: ArchiveIndex;
  try {
    index = await readArchiveIndex(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new NotFoundError(`no bundle file ${file}`, { next: 'Check the path, or create one with cs-llm bundle create.' });
    if (code === 'EISDIR')
      throw new NotFoundError(`${file} is a directory, not a bundle file`, {
        next: 'Pass the bundle file (the .tar written by bundle create).',
      });
    if (err instanceof NotATarError) {
      if (/gzip/.test(err.message)) {
        throw new BundleIntegrityError(`${file} is gzip-compressed; bundle files are plain tar`, [err.message], {
          next: `Decompress it first (gunzip -k ${file}) and pass the .tar.`,
        });
      }
      throw notABundle(file, `not a tar archive (${err.message})`);
    }
    throw err;
  }
  const first = index.entries[0];
  if (!first || first.path !== MANIFEST_MEMBER)
    throw notABundle(file, `the first member is ${first ? first.path : 'missing'}, not ${MANIFEST_MEMBER}`);
  if (first.truncated) throw notABundle(file, `member ${MANIFEST_MEMBER} is truncated`);
  if (first.size > MAX_MANIFEST_BYTES) throw notABundle(file, `member ${MANIFEST_MEMBER} is implausibly large (${first.size} bytes)`);
  const handle = await open(file, 'r');
  const data = Buffer.alloc(first.size);
  try {
    await handle.read(data, 0, first.size, first.dataOffset);
  } finally {
    await handle.close();
  }
  let raw: unknown;
  try {
    raw = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw notABundle(file, `member ${MANIFEST_MEMBER} is not valid JSON (${(err as Error).message}): altered or corrupt`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) throw notABundle(file, `member ${MANIFEST_MEMBER}: ${describeManifestIssue(parsed.error)}`);
  const entries = new Map<string, ArchiveEntry>();
  for (const entry of index.entries) entries.set(entry.path, entry);
  return { file, manifest: parsed.data, index, entries };
}

/** Every problem of the bundle, one line each naming the member; empty when it verifies. */
export async function verifyBundle(bundle: OpenedBundle, onProgress?: BundleProgressListener, signal?: AbortSignal): Promise<string[]> {
  const problems: string[] = [];
  const { manifest, entries, file } = bundle;
  const listed = new Set([MANIFEST_MEMBER, ...manifest.members.map((m) => m.path)]);
  for (const entry of bundle.index.entries) {
    if (!listed.has(entry.path)) problems.push(`member ${entry.path} is in the file but not in the manifest`);
  }
  const totalBytes = manifest.members.reduce((sum, m) => sum + (m.type === 'file' ? m.size : 0), 0);
  const progress = byteCounter(onProgress, 'verify', `verifying ${manifest.members.length} members`, totalBytes);
  for (const member of manifest.members) {
    const entry = entries.get(member.path);
    if (!entry) {
      problems.push(`member ${member.path} is missing${bundle.index.problems.length ? ' (the file is truncated)' : ''}`);
      continue;
    }
    if (entry.type !== member.type) {
      problems.push(`member ${member.path} is a ${entry.type} in the file, a ${member.type} in the manifest`);
      continue;
    }
    if (member.type === 'symlink') {
      if (entry.linkTarget !== member.target)
        problems.push(`member ${member.path} points to ${entry.linkTarget}, the manifest says ${member.target}`);
      continue;
    }
    if (entry.truncated) {
      const have = Math.max(0, bundle.index.fileSize - entry.dataOffset);
      problems.push(`member ${member.path} is truncated: the file ends after ${have} of its ${member.size} bytes`);
      continue;
    }
    if (entry.size !== member.size) {
      problems.push(`member ${member.path} is ${entry.size} bytes, the manifest says ${member.size}`);
      continue;
    }
    const sha256 = await hashRange(file, entry.dataOffset, entry.size, (n) => {
      throwIfCancelled(signal, 'verification');
      progress.add(n);
    });
    if (sha256 !== member.sha256) problems.push(`member ${member.path} does not match its sha256 (altered or corrupt)`);
  }
  // Archive-level problems last: the members they affect are already named above.
  for (const problem of bundle.index.problems) if (!problems.some((p) => p.includes('truncated'))) problems.push(problem);
  progress.finish(
    problems.length === 0 ? `all ${manifest.members.length} members match their size and sha256` : `${problems.length} problem(s) found`,
  );
  return problems;
}

export interface InspectResult {
  file: string;
  fileSize: number;
  manifest: BundleManifest;
  verified: boolean;
  problems: string[];
}

/** The manifest, and (unless asked not to) the result of verifying every member. */
export async function inspectBundle(
  file: string,
  options: { verify?: boolean; onProgress?: BundleProgressListener; signal?: AbortSignal } = {},
): Promise<InspectResult> {
  const bundle = await openBundle(file);
  const problems = options.verify === false ? [] : await verifyBundle(bundle, options.onProgress, options.signal);
  return {
    file,
    fileSize: bundle.index.fileSize,
    manifest: bundle.manifest,
    verified: options.verify !== false && problems.length === 0,
    problems,
  };
}

/** Opens and verifies, throwing a BundleIntegrityError that names every bad member. */
export async function requireVerifiedBundle(
  file: string,
  onProgress?: BundleProgressListener,
  signal?: AbortSignal,
): Promise<OpenedBundle> {
  const bundle = await openBundle(file);
  const problems = await verifyBundle(bundle, onProgress, signal);
  if (problems.length > 0) {
    throw new BundleIntegrityError(
      `bundle ${file} does not match its manifest: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`,
      problems,
      {
        next: 'Nothing was changed on this host. Copy the bundle again (compare sha256sum with the original), or create it again.',
      },
    );
  }
  return bundle;
}
