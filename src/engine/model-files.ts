/*
 * The files an engine needs on this host for a model, as data: for vLLM, one snapshot of the model's
 * Hugging Face cache folder (hub/models--Org--Name: blobs, snapshots/<revision>/ links into blobs,
 * refs/main); for the cpu engine, one GGUF file; the simulator needs none. `up --offline` checks them before anything starts, and offline
 * bundles (src/bundle/) carry exactly these files.
 */

import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ggufDir, SHIPPED_MODELS_DIR } from './cpu-plan.js';

/**
 * Where an engine's Hugging Face downloads go, for `up`, the doctor and bundles alike: engine.hfCacheDir, else
 * HF_HOME, else Hugging Face's own default $XDG_CACHE_HOME/huggingface (~/.cache/huggingface). Read from the
 * environment given, HOME included, so a caller's env decides and never the process's by accident.
 */
export function modelCacheDir(config: { engine: { hfCacheDir?: string | undefined } }, env: NodeJS.ProcessEnv): string {
  if (config.engine.hfCacheDir) return resolve(config.engine.hfCacheDir);
  if (env.HF_HOME) return resolve(env.HF_HOME);
  return resolve(env.XDG_CACHE_HOME ?? join(env.HOME ?? homedir(), '.cache'), 'huggingface');
}

/** The Hugging Face cache folder of one repository (hub/models--owner--name). */
export function hfRepoCacheDir(hfCacheDir: string, repo: string): string {
  return join(hfCacheDir, 'hub', hfRepoFolderName(repo));
}

export function hfRepoFolderName(repo: string): string {
  return `models--${repo.replace(/\//g, '--')}`;
}

export interface ModelFile {
  /** Path relative to the cache root (e.g. hub/models--Org--Name/blobs/<id>), always with "/". */
  rel: string;
  type: 'file' | 'symlink';
  /** Bytes of a file; 0 for a symlink. */
  size: number;
  /** A symlink's target as written in the link (relative, into ../../blobs). */
  target?: string;
}

export interface HfSnapshot {
  repo: string;
  repoDir: string;
  revision: string;
  /** blobs, snapshot entries and refs/main, relative to the cache root; blobs before the links to them. */
  files: ModelFile[];
  /** Bytes of the regular files. */
  totalBytes: number;
  /** refs/main names this revision. Without it, vLLM offline cannot resolve the repo (it asks for "main"). */
  hasRefMain: boolean;
}

export interface HfSnapshotCheck {
  snapshot: HfSnapshot | null;
  /** Why the snapshot is missing or incomplete, one line each; empty when complete. */
  problems: string[];
}

const WEIGHT_FILE = /\.(safetensors|bin|pt|pth|gguf)$/;
const SHARD_INDEXES = ['model.safetensors.index.json', 'pytorch_model.bin.index.json'];

function toPosix(path: string): string {
  return path.split(sep).join('/');
}

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith('/');
}

function pickRevision(repoDir: string): string | null {
  const ref = join(repoDir, 'refs', 'main');
  if (existsSync(ref)) {
    const revision = readFileSync(ref, 'utf8').trim();
    if (revision) return revision;
  }
  const snapshots = join(repoDir, 'snapshots');
  if (!existsSync(snapshots)) return null;
  // No refs/main (a download by revision): the newest snapshot.
  const names = readdirSync(snapshots).filter((n) => statSync(join(snapshots, n)).isDirectory());
  names.sort((a, b) => statSync(join(snapshots, b)).mtimeMs - statSync(join(snapshots, a)).mtimeMs);
  return names[0] ?? null;
}

function walkSnapshot(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    const stats = lstatSync(path);
    if (stats.isDirectory()) out.push(...walkSnapshot(path));
    else out.push(path);
  }
  return out;
}

/**
 * Reads one snapshot of a repository in the Hugging Face cache and says whether it is complete enough to
 * serve offline: config.json, at least one weights file, every shard an index names, and no link into a
 * missing blob. Which files a repository has cannot be known without the hub, so this is the best check
 * that works with nothing but the cache.
 */
export function readHfSnapshot(hfCacheDir: string, repo: string): HfSnapshotCheck {
  const root = resolve(hfCacheDir);
  const repoDir = hfRepoCacheDir(root, repo);
  if (!existsSync(repoDir)) return { snapshot: null, problems: [`${repo}: no ${toPosix(relative(root, repoDir))} in ${root}`] };
  const revision = pickRevision(repoDir);
  const snapshotDir = revision ? join(repoDir, 'snapshots', revision) : null;
  if (!revision || !snapshotDir || !existsSync(snapshotDir)) {
    return {
      snapshot: null,
      problems: [`${repo}: no downloaded snapshot in ${repoDir}${revision ? ` (refs/main names ${revision})` : ''}`],
    };
  }
  const problems: string[] = [];
  const blobs = new Map<string, ModelFile>();
  const entries: ModelFile[] = [];
  const names = new Set<string>();
  for (const path of walkSnapshot(snapshotDir)) {
    const inSnapshot = toPosix(relative(snapshotDir, path));
    names.add(inSnapshot);
    const stats = lstatSync(path);
    if (stats.isSymbolicLink()) {
      const target = readlinkSync(path);
      const pointsTo = resolve(dirname(path), target);
      if (!existsSync(pointsTo)) {
        problems.push(`${repo}: ${inSnapshot} points to a missing file (${target}): the download is incomplete`);
        continue;
      }
      if (isInside(repoDir, pointsTo) && statSync(pointsTo).isFile() && !lstatSync(pointsTo).isSymbolicLink()) {
        const blobRel = toPosix(relative(root, pointsTo));
        if (!blobs.has(blobRel)) blobs.set(blobRel, { rel: blobRel, type: 'file', size: statSync(pointsTo).size });
        entries.push({ rel: toPosix(relative(root, path)), type: 'symlink', size: 0, target });
        continue;
      }
      // A link out of the repository folder: carry the file itself.
      entries.push({ rel: toPosix(relative(root, path)), type: 'file', size: statSync(pointsTo).size });
    } else if (stats.isFile()) {
      entries.push({ rel: toPosix(relative(root, path)), type: 'file', size: stats.size });
    }
  }
  if (!names.has('config.json')) problems.push(`${repo}: the snapshot ${revision} has no config.json`);
  if (![...names].some((n) => WEIGHT_FILE.test(n)))
    problems.push(`${repo}: the snapshot ${revision} has no weights file (*.safetensors, *.bin)`);
  for (const index of SHARD_INDEXES) {
    if (!names.has(index)) continue;
    try {
      const map = (JSON.parse(readFileSync(join(snapshotDir, index), 'utf8')) as { weight_map?: Record<string, string> }).weight_map ?? {};
      for (const shard of new Set(Object.values(map))) {
        if (!names.has(shard)) problems.push(`${repo}: shard ${shard} (named in ${index}) is missing: the download is incomplete`);
      }
    } catch {
      problems.push(`${repo}: ${index} in snapshot ${revision} is not valid JSON`);
    }
  }
  const files: ModelFile[] = [...blobs.values(), ...entries];
  const ref = join(repoDir, 'refs', 'main');
  const hasRefMain = existsSync(ref) && readFileSync(ref, 'utf8').trim() === revision;
  if (hasRefMain) files.push({ rel: toPosix(relative(root, ref)), type: 'file', size: statSync(ref).size });
  const totalBytes = files.reduce((sum, f) => sum + f.size, 0);
  return { snapshot: { repo, repoDir, revision, files, totalBytes, hasRefMain }, problems };
}

/** Where an engine kind keeps model files, and which it needs for a model. */
export type ModelStore = { store: 'none' } | { store: 'hf-cache'; repo: string } | { store: 'gguf'; file: string };

/** Engines as data: which model files each kind needs. */
export function modelStoreFor(kind: string, model: { id: string; hfRepo?: string | null; gguf?: { file: string } | null }): ModelStore {
  if (kind === 'vllm') return { store: 'hf-cache', repo: model.hfRepo ?? model.id };
  if (kind === 'cpu' && model.gguf) return { store: 'gguf', file: model.gguf.file };
  return { store: 'none' };
}

export interface GgufLocation {
  /** Where the cpu engine finds the file on this host, or null when it is in none of its folders. */
  path: string | null;
  /** Where a download (or a bundle load) puts it: the first folder the engine looks in. */
  installPath: string;
  sizeBytes: number;
}

/** A GGUF file where the cpu engine looks for it: the download folder, then the models shipped with cs-llm. */
export function locateGguf(file: string, env: NodeJS.ProcessEnv): GgufLocation {
  const installPath = join(ggufDir(env), file);
  for (const candidate of [installPath, join(SHIPPED_MODELS_DIR, file)]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return { path: candidate, installPath, sizeBytes: statSync(candidate).size };
  }
  return { path: null, installPath, sizeBytes: 0 };
}
