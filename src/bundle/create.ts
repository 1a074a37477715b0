/*
 * `bundle create`: the engine image (docker save by name), the model's files from this host's cache, the
 * catalog entry and a manifest, in one tar file. Everything is streamed and hashed as it is written; the
 * manifest goes first in the file, so it is reserved at the start and filled in at the end, when every
 * member's sha256 is known. The file appears under its name only when complete.
 */

import { createReadStream, existsSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { PassThrough } from 'node:stream';
import { createGzip } from 'node:zlib';
import type Docker from 'dockerode';
import type { Config } from '../core/config.js';
import { ConflictError, EnvironmentError, UsageError } from '../core/errors.js';
import { createLogger } from '../core/log.js';
import { VERSION } from '../core/version.js';
import { modelCacheDir } from '../doctor/checks.js';
import { createDockerClient, requireDockerEngine } from '../engine/docker.js';
import { engineKindInfo, type EngineKind } from '../engine/kinds.js';
import { SHIPPED_MODELS_DIR } from '../engine/cpu-plan.js';
import { locateGguf, modelStoreFor, readHfSnapshot, type HfSnapshot } from '../engine/model-files.js';
import { ensureImage, type PullPolicy } from '../engine/pull.js';
import { resolveKind } from '../engine/up.js';
import { findModel, loadCatalog } from '../models/catalog.js';
import type { ModelEntry } from '../models/schema.js';
import { ArchiveWriter } from './archive.js';
import { inspectImage, isIdReference, saveImage } from './image.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_VERSION,
  cacheRelOf,
  GGUF_PREFIX,
  hfMemberPath,
  MANIFEST_MEMBER,
  manifestSchema,
  type BundleManifest,
  type BundleMember,
} from './manifest.js';
import { byteCounter, throwIfCancelled, type BundleProgressListener } from './progress.js';
import { freeDisk } from '../core/disk.js';
import { formatGiB } from '../models/fit.js';

const log = createLogger('bundle');

export interface CreateBundleRequest {
  model: string;
  /** vllm | sim (| cpu once that engine exists); default: the configured engine kind. */
  engine?: string;
  image?: string;
  out?: string;
  /** gzip the image member (dockerd loads gzip as it is); model files are stored as they are. */
  gzipImage?: boolean;
  config: Config;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  onProgress?: BundleProgressListener;
  signal?: AbortSignal;
}

export interface CreateBundleResult {
  file: string;
  sizeBytes: number;
  manifest: BundleManifest;
}

const PLACEHOLDER_SHA = '0'.repeat(64);
/** Room for what is only known at the end (the image member's size) beyond the draft manifest. */
const MANIFEST_SLACK = 4096;

export function defaultBundleName(modelId: string, kind: EngineKind): string {
  return `cs-llm-bundle-${modelId}-${kind}.tar`;
}

function bundleKind(request: CreateBundleRequest): EngineKind {
  const raw = request.engine ?? request.config.engine.kind;
  if (!['auto', 'vllm', 'sim', 'cpu'].includes(raw)) {
    throw new UsageError(`--engine must be vllm, cpu or sim, got "${raw}"`, {
      next: 'Use --engine vllm for a GPU host, cpu for a CPU-only host, or sim for the simulator.',
    });
  }
  return resolveKind(raw as Config['engine']['kind']);
}

function weightsMissing(model: ModelEntry, repo: string, cacheDir: string, problems: string[]): EnvironmentError {
  return new EnvironmentError(`the weights of ${repo} are not (completely) in ${cacheDir}`, {
    details: problems,
    next:
      `On a connected machine run huggingface-cli download ${repo} (or cs-llm up --model ${model.id} once), ` +
      `copy its Hugging Face cache folder hub/models--${repo.replace(/\//g, '--')} into ${cacheDir}/hub here, then run bundle create again.`,
  });
}

async function checkRoom(outDir: string, neededBytes: number): Promise<void> {
  const { freeBytes: free } = await freeDisk(outDir);
  if (free === null) return; // cannot tell: the write itself will say
  if (free < neededBytes) {
    throw new EnvironmentError(
      `not enough disk for the bundle at ${outDir}: it needs about ${formatGiB(neededBytes)}, ${formatGiB(free)} are free`,
      {
        next: 'Write it to a larger disk with --out /path/on/that/disk/bundle.tar.',
      },
    );
  }
}

export async function createBundle(request: CreateBundleRequest, deps: { docker?: Docker } = {}): Promise<CreateBundleResult> {
  const env = request.env ?? process.env;
  const kind = bundleKind(request);
  const catalog = loadCatalog({ userModels: request.config.models });
  const model = findModel(catalog, request.model);
  if (kind === 'vllm' && !model.engines.includes('vllm')) {
    throw new UsageError(`model ${model.id} does not run on the vllm engine (it is for: ${model.engines.join(', ')})`, {
      next: 'Pick a vllm model with --model (cs-llm models lists them).',
    });
  }
  if (kind === 'cpu' && (!model.engines.includes('cpu') || !model.gguf)) {
    throw new UsageError(`model ${model.id} does not run on the cpu engine (it is for: ${model.engines.join(', ')})`, {
      next: 'Pick a GGUF model with --model (cs-llm models --engine cpu lists them).',
    });
  }
  const image = request.image ?? request.config.engine.image ?? engineKindInfo(kind).defaultImage;
  if (isIdReference(image)) {
    throw new UsageError(`--image ${image} is an image id or digest; a bundle saves images by name so their tags come back on load`, {
      next: 'Pass the image by repository:tag (docker image ls shows them).',
    });
  }

  // The weights first: no point pulling an image for a bundle that cannot have its model.
  const store = modelStoreFor(kind, model);
  const cacheDir = modelCacheDir(request.config, env);
  let snapshot: HfSnapshot | null = null;
  let gguf: { file: string; path: string; size: number } | null = null;
  if (store.store === 'hf-cache') {
    const check = readHfSnapshot(cacheDir, store.repo);
    if (!check.snapshot || check.problems.length > 0) throw weightsMissing(model, store.repo, cacheDir, check.problems);
    snapshot = check.snapshot;
  }
  if (store.store === 'gguf') {
    const found = locateGguf(store.file, env);
    if (!found.path) {
      throw new EnvironmentError(
        `the GGUF file ${store.file} of ${model.id} is not on this host (looked in ${dirname(found.installPath)} and ${SHIPPED_MODELS_DIR})`,
        {
          next: `On a connected machine download it${model.gguf?.hfRepo ? ` from ${model.gguf.hfRepo}` : ''} to ${found.installPath}, then run bundle create again.`,
        },
      );
    }
    gguf = { file: store.file, path: found.path, size: found.sizeBytes };
  }

  const docker = deps.docker ?? createDockerClient(env);
  await requireDockerEngine(docker, env);
  const policy: PullPolicy = request.config.engine.pullPolicy;
  if (request.config.engine.offline && !(await inspectImage(docker, image))) {
    throw new EnvironmentError(`image ${image} is not on this host, and offline mode forbids pulling it`, {
      next: `Pull it where a registry is reachable (docker pull ${image}), or run bundle create without --offline/engine.offline.`,
    });
  }
  const pulled = await ensureImage(docker, image, {
    policy: request.config.engine.offline ? 'never' : policy,
    signal: request.signal,
    onProgress: (p) =>
      request.onProgress?.({
        type: 'bytes',
        part: 'image',
        label: `pulling ${image}`,
        doneBytes: p.downloadedBytes,
        totalBytes: p.totalBytes || null,
      }),
  });
  if (pulled.pulled) request.onProgress?.({ type: 'note', message: `pulled ${image}` });
  const facts = await inspectImage(docker, image);
  if (!facts)
    throw new EnvironmentError(`image ${image} is not on this host`, { next: `docker pull ${image}, then run bundle create again.` });

  const out = resolve(request.cwd ?? process.cwd(), request.out ?? defaultBundleName(model.id, kind));
  if (existsSync(out)) {
    throw new ConflictError(`${out} already exists`, { next: 'Remove it, or pass another file name with --out.' });
  }
  await checkRoom(dirname(out), facts.sizeBytes + (snapshot?.totalBytes ?? 0) + (gguf?.size ?? 0) + 1024 * 1024);

  const imageMember = request.gzipImage ? 'image.tar.gz' : 'image.tar';
  const members: BundleMember[] = [{ path: imageMember, type: 'file', size: 0, sha256: PLACEHOLDER_SHA, role: 'image' }];
  // The engine asks the cache for "main": a snapshot downloaded by revision gets a refs/main naming it.
  const refMain =
    snapshot && !snapshot.hasRefMain
      ? { rel: `${relative(cacheDir, snapshot.repoDir).split(sep).join('/')}/refs/main`, data: Buffer.from(snapshot.revision) }
      : null;
  for (const file of snapshot?.files ?? []) {
    members.push(
      file.type === 'symlink'
        ? { path: hfMemberPath(file.rel), type: 'symlink', target: file.target!, role: 'model-file' }
        : { path: hfMemberPath(file.rel), type: 'file', size: file.size, sha256: PLACEHOLDER_SHA, role: 'model-file' },
    );
  }
  if (refMain)
    members.push({ path: hfMemberPath(refMain.rel), type: 'file', size: refMain.data.length, sha256: PLACEHOLDER_SHA, role: 'model-file' });
  if (gguf)
    members.push({ path: `${GGUF_PREFIX}${gguf.file}`, type: 'file', size: gguf.size, sha256: PLACEHOLDER_SHA, role: 'model-file' });
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    csLlmVersion: VERSION,
    createdAt: new Date().toISOString(),
    engine: kind,
    image: {
      refs: [image],
      id: facts.id,
      member: imageMember,
      compression: request.gzipImage ? 'gzip' : 'none',
      sizeBytes: facts.sizeBytes,
    },
    model: {
      id: model.id,
      entry: { ...model } as Record<string, unknown>,
      store: store.store,
      ...(snapshot ? { repo: snapshot.repo, revision: snapshot.revision } : {}),
      ...(gguf ? { file: gguf.file } : {}),
    },
    members,
  };
  const reserved = Buffer.byteLength(JSON.stringify(manifest, null, 2)) + MANIFEST_SLACK;

  const partial = `${out}.partial-${process.pid}`;
  const writer = await ArchiveWriter.create(partial);
  let complete = false;
  let saved: NodeJS.ReadableStream | null = null;
  try {
    const manifestAt = await writer.reserve(MANIFEST_MEMBER, reserved);

    // The image: docker save streams without a length; inspect's size is close to what it writes.
    const imageProgress = byteCounter(request.onProgress, 'image', `saving image ${image}`, facts.sizeBytes || null);
    saved = await saveImage(docker, [image]);
    const sink = request.gzipImage ? createGzip() : new PassThrough();
    saved.on('data', (chunk: Buffer) => imageProgress.add(chunk.length));
    saved.on('error', (err: Error) => sink.destroy(err));
    saved.pipe(sink);
    const imageWritten = await writer.addFile(imageMember, sink, null, () => throwIfCancelled(request.signal, 'bundle create'));
    Object.assign(members[0]!, imageWritten);
    imageProgress.finish(`image ${image} (${facts.id.slice(7, 19)}) saved`);

    if (gguf) {
      const member = members.at(-1)!;
      const ggufProgress = byteCounter(request.onProgress, 'models', `writing ${gguf.file}`, gguf.size);
      const written = await writer.addFile(member.path, createReadStream(gguf.path, { highWaterMark: 1024 * 1024 }), gguf.size, (n) => {
        throwIfCancelled(request.signal, 'bundle create');
        ggufProgress.add(n);
      });
      Object.assign(member, { sha256: written.sha256 });
      ggufProgress.finish(`${gguf.file} written`);
    }
    if (snapshot) {
      const modelProgress = byteCounter(request.onProgress, 'models', `writing ${snapshot.repo}`, snapshot.totalBytes);
      for (const member of members.slice(1)) {
        if (member.type === 'symlink') {
          await writer.addSymlink(member.path, member.target);
          continue;
        }
        const source =
          refMain && member.path === hfMemberPath(refMain.rel)
            ? [refMain.data]
            : createReadStream(join(cacheDir, cacheRelOf(member.path)), { highWaterMark: 1024 * 1024 });
        const written = await writer.addFile(member.path, source, member.size, (n) => {
          throwIfCancelled(request.signal, 'bundle create');
          modelProgress.add(n);
        });
        member.sha256 = written.sha256;
      }
      modelProgress.finish(`${snapshot.files.length} files of ${snapshot.repo} (revision ${snapshot.revision.slice(0, 12)}) written`);
    }

    const final = manifestSchema.parse(manifest);
    const text = Buffer.from(JSON.stringify(final, null, 2));
    if (text.length > reserved) throw new Error(`manifest grew beyond its reserved ${reserved} bytes`);
    await writer.overwrite(manifestAt, text);
    const sizeBytes = await writer.finish();
    renameSync(partial, out);
    complete = true;
    log('bundle %s written: %d bytes', out, sizeBytes);
    return { file: out, sizeBytes, manifest: final };
  } finally {
    if (!complete) {
      (saved as (NodeJS.ReadableStream & { destroy?: () => void }) | null)?.destroy?.();
      await writer.close();
      rmSync(partial, { force: true });
    }
  }
}
