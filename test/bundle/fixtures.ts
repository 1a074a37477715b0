import { createHash, randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { tarHeader } from '../../src/core/tar.js';
import { ArchiveWriter } from '../../src/bundle/archive.js';
import { BUNDLE_FORMAT, BUNDLE_FORMAT_VERSION, MANIFEST_MEMBER, type BundleManifest } from '../../src/bundle/manifest.js';

/**
 * Test material for bundles: a small Hugging Face cache folder laid out like a real download (blobs named
 * by hash, a snapshot of links into them, refs/main), a fingerprint of such a folder to compare after a
 * round trip, and a throwaway image of our own derived from the simulator image, so removing it never
 * touches an image other tests use.
 */
export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export interface FakeRepo {
  repo: string;
  repoDir: string;
  revision: string;
}

/** Writes hub/models--Org--Name with config.json, two safetensors shards and their index. */
export function writeFakeHfRepo(cacheDir: string, repo: string, shardBytes = 256 * 1024): FakeRepo {
  const repoDir = join(cacheDir, 'hub', `models--${repo.replace(/\//g, '--')}`);
  const revision = randomBytes(20).toString('hex');
  const snapshot = join(repoDir, 'snapshots', revision);
  mkdirSync(join(repoDir, 'blobs'), { recursive: true });
  mkdirSync(join(repoDir, 'refs'), { recursive: true });
  mkdirSync(snapshot, { recursive: true });
  const files: Record<string, Buffer> = {
    'config.json': Buffer.from(JSON.stringify({ architectures: ['Qwen2ForCausalLM'], num_hidden_layers: 28 })),
    'model-00001-of-00002.safetensors': randomBytes(shardBytes),
    'model-00002-of-00002.safetensors': randomBytes(shardBytes + 1),
    'model.safetensors.index.json': Buffer.from(
      JSON.stringify({ weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } }),
    ),
  };
  for (const [name, data] of Object.entries(files)) {
    // Hugging Face names blobs by their hash (the LFS sha256 for big files).
    const blob = sha256(data);
    writeFileSync(join(repoDir, 'blobs', blob), data);
    symlinkSync(`../../blobs/${blob}`, join(snapshot, name));
  }
  writeFileSync(join(repoDir, 'refs', 'main'), revision);
  return { repo, repoDir, revision };
}

/** Every entry under a folder: files by sha256, links by target. */
export function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (at: string) => {
    for (const name of readdirSync(at).sort()) {
      const path = join(at, name);
      const stats = lstatSync(path);
      const rel = relative(dir, path);
      if (stats.isSymbolicLink()) out[rel] = `link:${readlinkSync(path)}`;
      else if (stats.isDirectory()) walk(path);
      else out[rel] = `file:${sha256(readFileSync(path))}`;
    }
  };
  walk(dir);
  return out;
}

export async function pullIfMissing(docker: Docker, ref: string): Promise<void> {
  try {
    await docker.getImage(ref).inspect();
    return;
  } catch {
    // not here: pull it
  }
  const stream = (await docker.pull(ref)) as NodeJS.ReadableStream;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
      const failed = events?.find((e) => e.error);
      if (err || failed) reject(err ?? new Error(failed!.error));
      else resolve();
    });
  });
}

/**
 * A one-layer image of one small file, made here with `docker import` and tagged `ref`: what bundle create
 * and load do with an image does not depend on its size, and the simulator's 100 MB cost each save, load and
 * hash of the bundle seconds. Its id is its own (the content is random).
 */
export async function tinyImage(docker: Docker, ref: string): Promise<string> {
  const content = Buffer.from(`tiny image ${randomBytes(8).toString('hex')}\n`);
  const rootfs = Buffer.concat([
    tarHeader({ path: 'hello.txt', type: 'file', size: content.length, mode: 0o644, mtime: 0 }),
    content,
    Buffer.alloc(512 - (content.length % 512)),
    Buffer.alloc(1024),
  ]);
  const at = ref.lastIndexOf(':');
  const stream = (await docker.importImage(
    Readable.from([rootfs]) as never,
    {
      repo: ref.slice(0, at),
      tag: ref.slice(at + 1),
      changes: ['LABEL cs-llm.test=bundle'],
    } as never,
  )) as unknown as NodeJS.ReadableStream;
  await new Promise<void>((resolve, reject) => {
    docker.modem.followProgress(stream, (err: Error | null, events: Array<{ error?: string }>) => {
      const failed = events?.find((e) => e.error);
      if (err || failed) reject(err ?? new Error(failed!.error));
      else resolve();
    });
  });
  return (await docker.getImage(ref).inspect()).Id;
}

/** An image with its own id (the simulator plus a label), tagged `ref`. */
export async function deriveImage(docker: Docker, from: string, ref: string): Promise<string> {
  const at = ref.lastIndexOf(':');
  const container = await docker.createContainer({ Image: from, Labels: { 'cs-llm.test': 'bundle' } });
  try {
    await container.commit({
      repo: ref.slice(0, at),
      tag: ref.slice(at + 1),
      changes: [`LABEL cs-llm.test.bundle=${ref.slice(at + 1)}`],
    } as never);
  } finally {
    await container.remove({ force: true });
  }
  return (await docker.getImage(ref).inspect()).Id;
}

/** docker rmi that treats "already gone" as done. */
export async function removeImage(docker: Docker, ref: string): Promise<void> {
  await docker
    .getImage(ref)
    .remove({ force: true })
    .catch((err: { statusCode?: number }) => {
      if (err.statusCode !== 404) throw err;
    });
}

export async function imageId(docker: Docker, ref: string): Promise<string | null> {
  try {
    return (await docker.getImage(ref).inspect()).Id;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return null;
    throw err;
  }
}

export interface HandMadeMember {
  path: string;
  data?: Buffer;
  /** A symlink instead of a file. */
  target?: string;
  role?: 'image' | 'model-file';
}

/**
 * Writes a bundle without Docker: the members given (the first one is the image member), with a correct
 * manifest unless `tamper` changes it before it is written.
 */
export async function writeHandMadeBundle(
  file: string,
  members: HandMadeMember[],
  tamper: (manifest: BundleManifest) => void = () => undefined,
): Promise<BundleManifest> {
  const manifest: BundleManifest = {
    format: BUNDLE_FORMAT,
    formatVersion: BUNDLE_FORMAT_VERSION,
    csLlmVersion: 'test',
    createdAt: new Date(0).toISOString(),
    engine: 'vllm',
    image: {
      refs: ['127.0.0.1:5000/cs-llm/bundle-test:hand-made'],
      id: `sha256:${'1'.repeat(64)}`,
      member: members[0]!.path,
      compression: 'none',
    },
    model: { id: 'tiny', entry: {}, store: 'hf-cache', repo: 'Org/Tiny', revision: 'r1' },
    members: members.map((m, i) =>
      m.target !== undefined
        ? { path: m.path, type: 'symlink' as const, target: m.target, role: 'model-file' as const }
        : {
            path: m.path,
            type: 'file' as const,
            size: m.data!.length,
            sha256: sha256(m.data!),
            role: m.role ?? (i === 0 ? ('image' as const) : ('model-file' as const)),
          },
    ),
  };
  tamper(manifest);
  const writer = await ArchiveWriter.create(file);
  const text = Buffer.from(JSON.stringify(manifest, null, 2));
  const at = await writer.reserve(MANIFEST_MEMBER, text.length);
  await writer.overwrite(at, text);
  for (const m of members) {
    if (m.target !== undefined) await writer.addSymlink(m.path, m.target);
    else await writer.addFile(m.path, [m.data!], m.data!.length);
  }
  await writer.finish();
  return manifest;
}

export const TINY_PREFIX = 'models/hf-cache/hub/models--Org--Tiny';
