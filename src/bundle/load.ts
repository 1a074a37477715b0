/*
 * `bundle load`: verify every member first (nothing changes on a bad bundle), then the image (skipped when
 * present with the same id, re-tagged when only a tag is missing, else loaded with the response read to the
 * end and the id checked), then the model files into the cache: staged in a folder on the same file system
 * and renamed into place, a new model folder in one rename, so no half-written model is ever visible.
 * Files already there with the same sha256 are left alone: a second load changes nothing.
 */

import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  statSync,
  mkdtempSync,
} from 'node:fs';
import { fsync, write } from 'node:fs';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import type { Config } from '../core/config.js';
import { EnvironmentError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { modelCacheDir } from '../doctor/checks.js';
import { createDockerClient, requireDockerEngine } from '../engine/docker.js';
import { hfRepoFolderName, locateGguf } from '../engine/model-files.js';
import { loadCatalog } from '../models/catalog.js';
import { modelEntrySchema } from '../models/schema.js';
import { rangeStream } from './archive.js';
import { inspectImage, loadImage } from './image.js';
import { cacheRelOf, type BundleManifest, type BundleMember } from './manifest.js';
import { byteCounter, throwIfCancelled, type BundleProgressListener } from './progress.js';
import { linkInside, mkdirInside, openNewInside, removeStaleStaging, STAGING_PREFIX, stagingPrefix } from './staging.js';
import { requireVerifiedBundle, type OpenedBundle } from './verify.js';
import { freeDisk } from '../core/disk.js';
import { formatGiB } from '../models/fit.js';

const log = createLogger('bundle');
const writeAt = (fd: number, data: Buffer, offset: number, length: number, position: number) =>
  new Promise<number>((resolve, reject) => write(fd, data, offset, length, position, (err, n) => (err ? reject(err) : resolve(n))));
const fsyncFd = promisify(fsync);

export interface LoadBundleRequest {
  file: string;
  config: Config;
  env?: NodeJS.ProcessEnv;
  onProgress?: BundleProgressListener;
  signal?: AbortSignal;
}

export type ImageAction = 'already-present' | 'tagged' | 'loaded';

export interface LoadBundleResult {
  file: string;
  engine: BundleManifest['engine'];
  model: string;
  image: { refs: string[]; id: string; action: ImageAction };
  files: { written: number; skipped: number; bytesWritten: number; cacheDir: string | null };
  /** False when the bundle was already fully in place (a repeated load). */
  changed: boolean;
  /** Things the operator should know (a model not in this install's catalog, say). */
  notes: string[];
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function placeImage(
  docker: Docker,
  bundle: OpenedBundle,
  onProgress?: BundleProgressListener,
  signal?: AbortSignal,
): Promise<ImageAction> {
  const { image } = bundle.manifest;
  const current = await Promise.all(image.refs.map(async (ref) => ({ ref, facts: await inspectImage(docker, ref) })));
  if (current.every((c) => c.facts?.id === image.id)) {
    onProgress?.({
      type: 'part-done',
      part: 'load-image',
      message: `image ${image.refs.join(', ')} already present with id ${image.id.slice(7, 19)}: not loaded`,
    });
    return 'already-present';
  }
  // The layers are here under another tag (or none): a tag is all that is missing.
  if (await inspectImage(docker, image.id)) {
    for (const { ref, facts } of current) {
      if (facts?.id === image.id) continue;
      const at = ref.lastIndexOf(':');
      const [repo, tag] = at > ref.lastIndexOf('/') ? [ref.slice(0, at), ref.slice(at + 1)] : [ref, 'latest'];
      await docker.getImage(image.id).tag({ repo, tag });
    }
    onProgress?.({
      type: 'part-done',
      part: 'load-image',
      message: `image ${image.id.slice(7, 19)} already present; tagged ${image.refs.join(', ')}`,
    });
    return 'tagged';
  }
  const entry = bundle.entries.get(image.member)!;
  const progress = byteCounter(onProgress, 'load-image', `loading image ${image.refs.join(', ')}`, entry.size);
  const stream = rangeStream(bundle.file, entry.dataOffset, entry.size);
  stream.on('data', (chunk: Buffer) => progress.add(chunk.length));
  // Cancelled: cut the upload; dockerd then rejects the incomplete archive and keeps nothing of it.
  const onAbort = () => (stream as NodeJS.ReadableStream & { destroy(): void }).destroy();
  signal?.addEventListener('abort', onAbort, { once: true });
  let outcome;
  try {
    outcome = await loadImage(docker, stream);
  } catch (err) {
    throwIfCancelled(signal, 'bundle load');
    throw err;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  throwIfCancelled(signal, 'bundle load');
  log('docker load said: %o', outcome.loaded);
  for (const ref of image.refs) {
    const facts = await inspectImage(docker, ref);
    if (facts?.id !== image.id) {
      throw new EnvironmentError(`after loading, image ${ref} has id ${facts?.id ?? '(none)'}, the bundle says ${image.id}`, {
        next: 'Check dockerd (docker image ls) and run bundle load again; if it repeats, create the bundle again.',
      });
    }
  }
  progress.finish(`image ${image.refs.join(', ')} loaded (id ${image.id.slice(7, 19)})`);
  return 'loaded';
}

async function checkRoom(dir: string, neededBytes: number): Promise<void> {
  const { freeBytes: free } = await freeDisk(dir);
  if (free === null) return; // cannot tell: the writes themselves will say
  if (free < neededBytes + 64 * 1024 * 1024) {
    throw new EnvironmentError(
      `not enough disk for the model files in ${dir}: they need ${formatGiB(neededBytes)}, ${formatGiB(free)} are free`,
      {
        next: 'Nothing was changed. Free space there, or point the cache at a larger disk (engine.hfCacheDir, CS_LLM_ENGINE_HF_CACHE_DIR), and run bundle load again.',
      },
    );
  }
}

interface PlannedFile {
  member: BundleMember;
  dest: string;
}

/** Which model members are not already in place (same sha256, or a link with the same target). */
async function filesToWrite(bundle: OpenedBundle, cacheDir: string): Promise<{ todo: PlannedFile[]; skipped: number }> {
  const todo: PlannedFile[] = [];
  let skipped = 0;
  for (const member of bundle.manifest.members) {
    if (member.role !== 'model-file') continue;
    const dest = join(cacheDir, cacheRelOf(member.path));
    let same = false;
    try {
      const stats = lstatSync(dest);
      if (member.type === 'symlink') same = stats.isSymbolicLink() && readlinkSync(dest) === member.target;
      else same = stats.isFile() && stats.size === member.size && (await hashFile(dest)) === member.sha256;
    } catch {
      same = false;
    }
    if (same) skipped++;
    else todo.push({ member, dest });
  }
  return { todo, skipped };
}

/**
 * Copies a member to `rel` under `root`, hashing again as it goes (the file could have changed since
 * verification). Created as staging.ts creates: never through a link.
 */
async function writeMember(
  bundle: OpenedBundle,
  member: BundleMember,
  root: string,
  rel: string,
  onBytes: (n: number) => void,
): Promise<void> {
  if (member.type === 'symlink') {
    linkInside(root, rel, member.target);
    return;
  }
  const entry = bundle.entries.get(member.path)!;
  const file = openNewInside(root, rel, 0o644);
  const hash = createHash('sha256');
  try {
    let position = 0;
    for await (const chunk of rangeStream(bundle.file, entry.dataOffset, entry.size)) {
      const data = chunk as Buffer;
      hash.update(data);
      let done = 0;
      while (done < data.length) done += await writeAt(file.fd, data, done, data.length - done, position + done);
      position += data.length;
      onBytes(data.length);
    }
    await fsyncFd(file.fd);
  } finally {
    file.close();
  }
  if (hash.digest('hex') !== member.sha256) {
    throw new EnvironmentError(`member ${member.path} changed while it was being loaded (sha256 differs from the manifest)`, {
      next: 'Nothing of this model was put in place. Leave the bundle file alone during the load and run bundle load again.',
    });
  }
}

interface FilePlan {
  cacheDir: string;
  todo: PlannedFile[];
  skipped: number;
  bytes: number;
}

/** What the load will write, checked for room before anything changes. */
async function planModelFiles(bundle: OpenedBundle, cacheDir: string): Promise<FilePlan> {
  const { todo, skipped } = await filesToWrite(bundle, cacheDir);
  const bytes = todo.reduce((sum, f) => sum + (f.member.type === 'file' ? f.member.size : 0), 0);
  if (todo.length > 0) {
    let existing = cacheDir;
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
    await checkRoom(existing, bytes);
  }
  return { cacheDir, todo, skipped, bytes };
}

async function installModelFiles(
  bundle: OpenedBundle,
  plan: FilePlan,
  onProgress?: BundleProgressListener,
  signal?: AbortSignal,
): Promise<{ written: number; skipped: number; bytesWritten: number }> {
  const { manifest } = bundle;
  const { cacheDir, todo, skipped, bytes } = plan;
  const label = manifest.model.repo ?? manifest.model.id;
  if (todo.length === 0) {
    onProgress?.({
      type: 'part-done',
      part: 'install-models',
      message: `${skipped} files of ${label} already in ${cacheDir}: nothing written`,
    });
    return { written: 0, skipped, bytesWritten: 0 };
  }
  const hubDir = join(cacheDir, 'hub');
  const folder = hfRepoFolderName(manifest.model.repo!);
  const repoDir = join(hubDir, folder);
  mkdirSync(hubDir, { recursive: true });
  for (const name of removeStaleStaging(hubDir)) log('removed the staging folder %s of an interrupted load', name);
  // Same file system as the cache, so every move into place is a rename.
  const staging = mkdtempSync(join(hubDir, stagingPrefix()));
  const progress = byteCounter(onProgress, 'install-models', `installing ${label}`, bytes);
  let bytesWritten = 0;
  try {
    const staged = todo.map((f) => {
      const rel = cacheRelOf(f.member.path).slice('hub/'.length);
      return { ...f, rel, staged: join(staging, rel) };
    });
    for (const f of staged) {
      await writeMember(bundle, f.member, staging, f.rel, (n) => {
        throwIfCancelled(signal, 'bundle load');
        bytesWritten += n;
        progress.add(n);
      });
    }
    if (!existsSync(repoDir)) {
      renameSync(join(staging, folder), repoDir);
    } else {
      // Manifest order: blobs, then the snapshot links to them, then refs/main, so a link never dangles.
      for (const f of staged) {
        // The cache's own folders on the way must be folders, not links (created as staging.ts does).
        mkdirInside(repoDir, posix.dirname(f.rel.slice(folder.length + 1)));
        if (existsSync(f.dest) && statSync(f.dest).isDirectory() && !lstatSync(f.dest).isSymbolicLink()) {
          throw new EnvironmentError(`${f.dest} is a directory where the bundle has a file`, {
            next: `Move ${f.dest} away and run bundle load again.`,
          });
        }
        renameSync(f.staged, f.dest);
      }
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  progress.finish(`${todo.length} files of ${label} put in ${repoDir}${skipped ? ` (${skipped} already there)` : ''}`);
  return { written: todo.length, skipped, bytesWritten };
}

interface GgufPlan {
  member: Extract<BundleMember, { type: 'file' }>;
  dest: string;
  /** Already where the cpu engine looks, with the same sha256. */
  present: boolean;
}

async function planGguf(bundle: OpenedBundle, env: NodeJS.ProcessEnv): Promise<GgufPlan> {
  const member = bundle.manifest.members.find((m) => m.role === 'model-file');
  if (!member || member.type !== 'file')
    throw new EnvironmentError(`bundle ${bundle.file} names a GGUF model but holds no GGUF file`, { next: 'Create the bundle again.' });
  const found = locateGguf(bundle.manifest.model.file!, env);
  const present = found.path !== null && found.sizeBytes === member.size && (await hashFile(found.path)) === member.sha256;
  if (!present) {
    let existing = dirname(found.installPath);
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
    await checkRoom(existing, member.size);
  }
  return { member, dest: found.installPath, present };
}

/** The GGUF file into the cpu engine's folder: written beside its final name, hashed again, renamed into place. */
async function installGguf(
  bundle: OpenedBundle,
  plan: GgufPlan,
  onProgress?: BundleProgressListener,
  signal?: AbortSignal,
): Promise<{ written: number; skipped: number; bytesWritten: number }> {
  const name = bundle.manifest.model.file!;
  if (plan.present) {
    onProgress?.({ type: 'part-done', part: 'install-models', message: `${name} already in place with the same sha256: not written` });
    return { written: 0, skipped: 1, bytesWritten: 0 };
  }
  mkdirSync(dirname(plan.dest), { recursive: true });
  const staged = join(dirname(plan.dest), `${STAGING_PREFIX}${process.pid}-${name}`);
  const progress = byteCounter(onProgress, 'install-models', `installing ${name}`, plan.member.size);
  let bytesWritten = 0;
  try {
    await writeMember(bundle, plan.member, dirname(staged), basename(staged), (n) => {
      throwIfCancelled(signal, 'bundle load');
      bytesWritten += n;
      progress.add(n);
    });
    renameSync(staged, plan.dest);
  } finally {
    rmSync(staged, { force: true });
  }
  progress.finish(`${name} put in ${plan.dest}`);
  return { written: 1, skipped: 0, bytesWritten };
}

export async function loadBundle(request: LoadBundleRequest, deps: { docker?: Docker } = {}): Promise<LoadBundleResult> {
  const env = request.env ?? process.env;
  const file = resolve(request.file);
  // First pass: every member against the manifest, before anything on this host changes.
  const bundle = await requireVerifiedBundle(file, request.onProgress, request.signal);
  const { manifest } = bundle;

  const docker = deps.docker ?? createDockerClient(env);
  await requireDockerEngine(docker, env);
  const plan = manifest.model.store === 'hf-cache' ? await planModelFiles(bundle, modelCacheDir(request.config, env)) : null;
  const ggufPlan = manifest.model.store === 'gguf' ? await planGguf(bundle, env) : null;
  const action = await placeImage(docker, bundle, request.onProgress, request.signal);

  let files = { written: 0, skipped: 0, bytesWritten: 0, cacheDir: null as string | null };
  if (plan) files = { ...(await installModelFiles(bundle, plan, request.onProgress, request.signal)), cacheDir: plan.cacheDir };
  if (ggufPlan) files = { ...(await installGguf(bundle, ggufPlan, request.onProgress, request.signal)), cacheDir: dirname(ggufPlan.dest) };

  const notes: string[] = [];
  const entry = modelEntrySchema.safeParse(manifest.model.entry);
  const known = loadCatalog({ userModels: request.config.models }).models.some((m) => m.id === manifest.model.id);
  if (!known) {
    notes.push(
      entry.success
        ? `model ${manifest.model.id} is not in this install's catalog: add its entry (cs-llm bundle inspect ${request.file} --json, under manifest.model.entry) to the "models" list of your config`
        : `model ${manifest.model.id} is not in this install's catalog, and the bundle's entry does not validate here`,
    );
  }
  return {
    file,
    engine: manifest.engine,
    model: manifest.model.id,
    image: { refs: manifest.image.refs, id: manifest.image.id, action },
    files,
    changed: action !== 'already-present' || files.written > 0,
    notes,
  };
}
