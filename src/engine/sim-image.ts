/*
 * Builds the simulator image from this install when the default one cannot be pulled (a fresh machine
 * with Docker but without the project's registry): no base image and no network, just the node binary,
 * the libraries ldd names for it, dist/sim, dist/openai-server (the OpenAI wire it shares with the CPU engine)
 * and a package.json that makes its files ES modules, streamed as a tar archive into the engine's image import.
 */

import { readdirSync, readFileSync, realpathSync, statSync, existsSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { execa } from 'execa';
import { EnvironmentError } from '../core/errors.js';
import { tarEnd, tarHeader as ustarHeader, tarPadding } from '../core/tar.js';
import { createLogger } from '../core/log.js';
import { PACKAGE_ROOT, VERSION } from '../core/version.js';
import { SIM_IMAGE_DEFAULT } from './kinds.js';
import { createPullTracker, followPull } from './pull.js';

const log = createLogger('engine');

export function isDefaultSimImage(image: string): boolean {
  return image === SIM_IMAGE_DEFAULT;
}

interface TarEntry {
  path: string;
  mode: number;
  /** Omitted for directories. */
  data?: Buffer;
}

/** One entry's header block(s); the tar format itself lives in src/core/tar.ts (shared with offline bundles). */
export function tarHeader(entry: TarEntry, mtime: number): Buffer {
  const isDir = entry.data === undefined;
  return ustarHeader({ path: entry.path, type: isDir ? 'directory' : 'file', size: entry.data?.length ?? 0, mode: entry.mode, mtime });
}

/** A tar archive of the entries, as a stream of blocks. */
export function tarStream(entries: TarEntry[], mtime = Math.floor(Date.now() / 1000)): Readable {
  return Readable.from(
    (function* () {
      for (const entry of entries) {
        yield tarHeader(entry, mtime);
        if (entry.data && entry.data.length > 0) {
          yield entry.data;
          const pad = tarPadding(entry.data.length);
          if (pad) yield Buffer.alloc(pad);
        }
      }
      yield tarEnd();
    })(),
  );
}

/** Library paths from `ldd` output, the dynamic loader included. */
export function librariesFromLdd(output: string): string[] {
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const arrow = line.match(/=>\s+(\/\S+)/);
    if (arrow) libs.push(arrow[1]!);
    else {
      const bare = line.trim().match(/^(\/\S+)/);
      if (bare) libs.push(bare[1]!);
    }
  }
  return [...new Set(libs)];
}

function dirsOf(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path));
    else out.push(path);
  }
  return out;
}

export const INSTALLED_SIM_DIR = join(PACKAGE_ROOT, 'dist', 'sim');

export async function buildLocalSimImage(
  docker: Docker,
  ref: string = SIM_IMAGE_DEFAULT,
  simDir: string = INSTALLED_SIM_DIR,
): Promise<void> {
  if (!existsSync(join(simDir, 'main.js')) || !existsSync(join(dirname(simDir), 'openai-server'))) {
    throw new EnvironmentError(`cannot build the simulator image: ${simDir}/main.js or ${dirname(simDir)}/openai-server is missing`, {
      next: 'Run npm run build in the cs-llm checkout (or reinstall cs-llm), or pass --image with a simulator image you have.',
    });
  }
  const node = realpathSync(process.execPath);
  const ldd = await execa('ldd', [node], { reject: false, timeout: 10_000 });
  if (ldd.exitCode !== 0 || /not found/.test(String(ldd.stdout))) {
    throw new EnvironmentError(`cannot build the simulator image: ldd could not list the libraries of ${node}`, {
      next: 'Pass --image with a simulator image you have, or run the simulator without Docker (--gpus none with dockerd stopped).',
      details: [String(ldd.stdout || ldd.stderr || '').slice(0, 500)],
    });
  }
  const files = new Map<string, TarEntry>();
  const addFile = (path: string, data: Buffer, mode: number) => {
    for (const dir of dirsOf(path)) if (!files.has(dir)) files.set(dir, { path: dir, mode: 0o755 });
    files.set(path, { path, mode, data });
  };
  addFile('usr/local/bin/node', readFileSync(node), 0o755);
  for (const lib of librariesFromLdd(String(ldd.stdout))) addFile(lib.replace(/^\//, ''), readFileSync(lib), 0o755);
  addFile(
    'etc/passwd',
    Buffer.from('root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n'),
    0o644,
  );
  addFile('etc/group', Buffer.from('root:x:0:\nnogroup:x:65534:\n'), 0o644);
  addFile('etc/hosts', Buffer.from('127.0.0.1\tlocalhost\n::1\tlocalhost\n'), 0o644);
  addFile('etc/nsswitch.conf', Buffer.from('passwd: files\ngroup: files\nhosts: files dns\n'), 0o644);
  files.set('tmp', { path: 'tmp', mode: 0o1777 });
  for (const file of walk(simDir)) addFile(`app/dist/sim/${relative(simDir, file)}`, readFileSync(file), 0o644);
  // The OpenAI wire and access code the simulator shares with the CPU engine (Node built-ins only), beside dist/sim.
  const sharedDir = join(dirname(simDir), 'openai-server');
  for (const file of walk(sharedDir)) addFile(`app/dist/openai-server/${relative(sharedDir, file)}`, readFileSync(file), 0o644);
  addFile(
    'app/package.json',
    Buffer.from(`${JSON.stringify({ name: 'cs-llm-sim', version: VERSION, private: true, type: 'module' })}\n`),
    0o644,
  );

  const colon = ref.lastIndexOf(':');
  const slash = ref.lastIndexOf('/');
  const [repo, tag] = colon > slash ? [ref.slice(0, colon), ref.slice(colon + 1)] : [ref, 'latest'];
  log('importing %s (%d entries)', ref, files.size);
  const stream = (await docker.importImage(tarStream([...files.values()]), {
    repo,
    tag,
    changes: [
      'ENTRYPOINT ["/usr/local/bin/node", "/app/dist/sim/main.js"]',
      'CMD ["--host", "0.0.0.0", "--port", "8000"]',
      'EXPOSE 8000',
      'WORKDIR /app',
      'USER 65534:65534',
      `LABEL org.opencontainers.image.title=cs-llm-sim org.opencontainers.image.version=${VERSION}`,
    ],
  } as object)) as NodeJS.ReadableStream;
  try {
    await followPull(stream, createPullTracker(ref), undefined, 120_000);
  } catch (err) {
    throw new EnvironmentError(`building the simulator image ${ref} failed: ${(err as Error).message}`, {
      next: 'Pass --image with a simulator image you have, or run with --verbose to see more.',
      cause: err,
    });
  }
}
