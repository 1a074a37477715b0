/*
 * `cs-llm models pull <id>`: one catalog GGUF onto this host, checked. The bytes go to `<file>.part` next
 * to the final name; a later run continues that part with a Range request (servers that ignore Range send
 * the whole file and the part starts over). Size and sha256 are checked before the rename, so the engine
 * never sees a file that is not the catalog's; a mismatch removes the part. A `<file>.part.lock` holding the
 * pid keeps two pulls from writing the same part.
 */

import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, statSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { freeDisk as probeFreeDisk, type FreeDisk } from '../core/disk.js';
import { ConflictError, CsLlmError, EnvironmentError, NotFoundError, UsageError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { formatFileSize, ggufDownloadUrl } from './gguf-source.js';
import type { ModelEntry } from './schema.js';

export type GgufPullProgress =
  | { type: 'checking'; path: string; message: string }
  | { type: 'start'; url: string; path: string; totalBytes: number | null; resumeFrom: number }
  | { type: 'bytes'; doneBytes: number; totalBytes: number | null }
  | { type: 'verifying'; path: string };

export interface PullGgufOptions {
  model: ModelEntry;
  /** The folder the cpu engine looks in first (ggufDir). */
  dir: string;
  /** Hugging Face endpoint or mirror, without a trailing slash. */
  endpoint: string;
  /** Other folders where a valid copy counts as present (the models shipped with cs-llm). */
  alsoLookIn?: string[];
  /** Sent as a bearer token, only to the endpoint's own origin (never to the CDN it redirects to). */
  token?: string;
  onProgress?: (event: GgufPullProgress) => void;
  signal?: AbortSignal;
  /** The free-disk probe; a parameter so a test can play a full disk. */
  freeDisk?: (path: string) => Promise<FreeDisk>;
  /** Longest wait for response headers, and for the next bytes of the body. */
  idleTimeoutMs?: number;
}

export interface PullGgufResult {
  status: 'downloaded' | 'present';
  id: string;
  path: string;
  /** Where it comes from; null for a present file whose entry names no source (the shipped tiny models). */
  url: string | null;
  sizeBytes: number;
  sha256: string;
  /** Bytes already in the part file when this run started (0: a fresh download). */
  resumedFrom: number;
  /** Bytes received by this run. */
  downloadedBytes: number;
}

const MAX_REDIRECTS = 10;
/** Room left beyond the file itself: file system overhead and whatever else writes there meanwhile. */
const DISK_MARGIN_BYTES = 64 * 1024 ** 2;

async function hashFile(path: string, hash: Hash = createHash('sha256'), signal?: AbortSignal): Promise<Hash> {
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash;
}

function fileSize(path: string): number | null {
  try {
    const s = statSync(path);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads and drops a response body that is not wanted (an error page, a redirect). */
function discard(res: IncomingMessage): void {
  res.resume();
}

/**
 * One GET with node's http client. Not undici (nor fetch, which is undici inside): both 7.30 and Node 20's
 * 6.24 throw an uncatchable AssertionError (`assert(!this.paused)`, nodejs/undici#5360) when a server
 * closes the connection after the body while the reader applies backpressure, which a download to disk
 * does; seen here 16 times in 20 against an HTTP/1.0 server. A fresh connection per request (agent: false);
 * the idle limit covers the wait for headers and every gap in the body.
 */
function getOnce(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
  idleTimeoutMs: number,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method: 'GET', headers, signal, agent: false }, resolve);
    req.setTimeout(idleTimeoutMs, () => req.destroy(new Error(`no bytes from ${target.host} for ${Math.round(idleTimeoutMs / 1000)} s`)));
    req.on('error', reject);
    req.end();
  });
}

/** GET with redirects followed by hand: the Range header goes to every hop, the token only to the first origin. */
async function get(
  url: string,
  options: { range: number | null; token?: string; signal?: AbortSignal; idleTimeoutMs: number },
): Promise<IncomingMessage> {
  const origin = new URL(url).origin;
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'user-agent': `cs-llm/${VERSION}`, 'accept-encoding': 'identity' };
    if (options.range !== null) headers.range = `bytes=${options.range}-`;
    if (options.token && new URL(current).origin === origin) headers.authorization = `Bearer ${options.token}`;
    const res = await getOnce(current, headers, options.signal, options.idleTimeoutMs);
    const location = header(res.headers, 'location');
    if ([301, 302, 303, 307, 308].includes(res.statusCode ?? 0) && location) {
      discard(res);
      current = new URL(location, current).toString();
      continue;
    }
    return res;
  }
  throw new EnvironmentError(`${url}: more than ${MAX_REDIRECTS} redirects`, {
    next: 'Check the endpoint (HF_ENDPOINT or engine.hfEndpoint): a mirror should answer the file or redirect once to its storage.',
  });
}

/** Keeps a second pull of the same file out while this one writes the part. */
async function takeLock(lockPath: string, part: string): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(lockPath, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lockPath, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      let alive = false;
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 0);
          alive = true;
        } catch (e) {
          alive = (e as NodeJS.ErrnoException).code === 'EPERM';
        }
      }
      if (alive) {
        throw new ConflictError(`another cs-llm models pull (pid ${pid}) is writing ${part}`, {
          next: `Wait for it to finish; if no such download runs, remove ${lockPath} and run the command again.`,
        });
      }
      // A lock left by a pull that died: take it over.
      await rm(lockPath, { force: true });
    }
  }
  throw new ConflictError(`cannot take the lock ${lockPath}`, { next: `Remove ${lockPath} and run the command again.` });
}

function mismatchError(what: string, part: string, id: string): EnvironmentError {
  return new EnvironmentError(`${what}; the part file ${part} was removed`, {
    next: `Run cs-llm models pull ${id} again to download from the start; if it happens again, the server (or mirror) serves another file than the catalog names: check the endpoint, or the catalog entry's sha256.`,
  });
}

export async function pullGguf(options: PullGgufOptions): Promise<PullGgufResult> {
  const { model, dir, endpoint, signal } = options;
  const gguf = model.gguf;
  if (!gguf || !model.engines.includes('cpu')) {
    throw new UsageError(`model ${model.id} is not a GGUF model for the cpu engine (it is for: ${model.engines.join(', ')})`, {
      next: 'cs-llm models --engine cpu lists the GGUF models; vLLM downloads its own models when it starts.',
    });
  }
  const url = ggufDownloadUrl(gguf, endpoint);
  const expectedSize = gguf.sizeBytes ?? null;
  const dest = join(dir, gguf.file);
  const part = `${dest}.part`;
  const emit = (event: GgufPullProgress) => options.onProgress?.(event);
  const idleTimeoutMs = options.idleTimeoutMs ?? 60_000;

  // Already here and valid (the shipped tiny models too): nothing to do. A file of ours that is not the
  // catalog's is not overwritten.
  for (const candidate of gguf.sha256 ? [dest, ...(options.alsoLookIn ?? []).map((d) => join(d, gguf.file))] : []) {
    const size = fileSize(candidate);
    if (size === null) continue;
    const sizeOk = expectedSize === null || size === expectedSize;
    let sha: string | null = null;
    if (sizeOk) {
      emit({ type: 'checking', path: candidate, message: `checking the sha256 of ${candidate}` });
      sha = (await hashFile(candidate, undefined, signal)).digest('hex');
      if (sha === gguf.sha256) {
        return { status: 'present', id: model.id, path: candidate, url, sizeBytes: size, sha256: sha, resumedFrom: 0, downloadedBytes: 0 };
      }
    }
    if (candidate === dest) {
      throw new ConflictError(
        `${dest} is already there but is not the catalog's file (${sizeOk ? `sha256 ${sha}, expected ${gguf.sha256}` : `${size} bytes, expected ${expectedSize}`})`,
        { next: `Move it away or remove it (rm ${JSON.stringify(dest)}), then run cs-llm models pull ${model.id} again.` },
      );
    }
  }
  if (!url) {
    throw new UsageError(`the catalog entry ${model.id} says where its file ${gguf.file} lives locally but not where to download it from`, {
      next: `Add gguf.hfRepo (owner/name) or gguf.url to that entry, or put ${gguf.file} into ${dir}/ yourself.`,
    });
  }
  if (!gguf.sha256) {
    throw new UsageError(`the catalog entry ${model.id} has no sha256, so a download could not be checked`, {
      next: `Add gguf.sha256 (and gguf.sizeBytes) to that entry from the file's page, or download ${url} into ${dir}/ yourself.`,
    });
  }
  const expectedSha = gguf.sha256;
  await mkdir(dir, { recursive: true });
  const unlock = await takeLock(`${part}.lock`, part);
  try {
    let partSize = fileSize(part) ?? 0;
    if (expectedSize !== null && partSize > expectedSize) {
      await rm(part, { force: true });
      partSize = 0;
    }
    const checkDisk = async (total: number | null, from: number) => {
      if (total === null) return;
      const need = total - from;
      const disk = await (options.freeDisk ?? probeFreeDisk)(dir);
      if (disk.freeBytes !== null && disk.freeBytes < need + DISK_MARGIN_BYTES) {
        throw new EnvironmentError(
          `not enough free disk for ${gguf.file}: ${formatFileSize(need)} still to download (plus ${DISK_MARGIN_BYTES / 1024 ** 2} MiB of room), ${formatFileSize(disk.freeBytes)} free at ${disk.at}`,
          {
            next: `Free space there, or set CS_LLM_GGUF_DIR to a folder on a larger disk (cs-llm up looks there too), then run cs-llm models pull ${model.id} again.`,
          },
        );
      }
    };
    await checkDisk(expectedSize, partSize);

    let hash = createHash('sha256');
    let received = 0;
    let resumedFrom = 0;
    let restarts = 0;
    for (;;) {
      if (partSize > 0 && expectedSize !== null && partSize === expectedSize) {
        // The bytes are all here (a run stopped between the last byte and the rename): only check them.
        hash = await hashFile(part, createHash('sha256'), signal);
        resumedFrom = partSize;
        break;
      }
      const res = await get(url, { range: partSize > 0 ? partSize : null, token: options.token, signal, idleTimeoutMs }).catch(
        (err: unknown) => {
          if (err instanceof CsLlmError) throw err;
          throw new EnvironmentError(`cannot download ${url}: ${(err as Error).message}`, {
            cause: err,
            next: `Check the network and the endpoint (${endpoint}; HF_ENDPOINT or engine.hfEndpoint set a mirror), then run cs-llm models pull ${model.id} again${partSize > 0 ? ': it continues the part file' : ''}.`,
          });
        },
      );
      const status = res.statusCode ?? 0;
      // Hugging Face says why in X-Error-Code (RepoNotFound, EntryNotFound, GatedRepo, ...); mirrors may not.
      const hubCode = header(res.headers, 'x-error-code');
      const hubWhy = hubCode
        ? ` (${hubCode}${header(res.headers, 'x-error-message') ? `: ${header(res.headers, 'x-error-message')}` : ''})`
        : '';
      if (status === 404) {
        discard(res);
        throw new NotFoundError(
          `${url} answered 404 Not Found${hubWhy}: ${gguf.hfRepo ? `${gguf.hfRepo} has no file ${gguf.file} there` : 'no file at that URL'}`,
          {
            next:
              `Check the endpoint (${endpoint}) serves ${gguf.hfRepo ? 'Hugging Face paths (<repo>/resolve/main/<file>)' : 'that URL'} and that the file still exists there; ` +
              `or get ${gguf.file} (${expectedSize !== null ? `${formatFileSize(expectedSize)}, ` : ''}sha256 ${expectedSha}) some other way and put it into ${dir}/.`,
          },
        );
      }
      if (status === 401 || status === 403) {
        discard(res);
        throw new EnvironmentError(`${url} answered ${status}${hubWhy}: the server wants a token, or refuses this client`, {
          next:
            'For a gated or private repository export HF_TOKEN=<your token> (sent only to the endpoint itself), then run the command again; ' +
            `Hugging Face also answers 401 for a repository that does not exist: check ${gguf.hfRepo ?? 'the URL'}.`,
        });
      }
      if (status === 416 || (status === 206 && partSize === 0)) {
        // The part does not match what the server has (416), or a 206 nobody asked for: start over once.
        discard(res);
        if (restarts++ > 0)
          throw new EnvironmentError(`${url} answered ${status} to a plain request`, {
            next: 'The server or mirror does not serve whole files; try another endpoint.',
          });
        await rm(part, { force: true });
        partSize = 0;
        continue;
      }
      if (status !== 200 && status !== 206) {
        discard(res);
        throw new EnvironmentError(`${url} answered HTTP ${status}`, {
          next: `Try again later${partSize > 0 ? ' (the part file is kept: the next run continues it)' : ''}, or check the endpoint (${endpoint}).`,
        });
      }
      let startAt = 0;
      let total: number | null = null;
      if (status === 206) {
        const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res.headers, 'content-range') ?? '');
        if (!range || Number(range[1]) !== partSize) {
          discard(res);
          if (restarts++ > 0)
            throw new EnvironmentError(
              `${url} answered a range that was not asked for (${header(res.headers, 'content-range') ?? 'no Content-Range'})`,
              { next: 'Try another endpoint.' },
            );
          await rm(part, { force: true });
          partSize = 0;
          continue;
        }
        startAt = partSize;
        total = range[3] === '*' ? null : Number(range[3]);
      } else {
        const length = header(res.headers, 'content-length');
        total = length !== undefined && /^\d+$/.test(length) ? Number(length) : null;
      }
      if (expectedSize !== null && total !== null && total !== expectedSize) {
        discard(res);
        await rm(part, { force: true });
        throw mismatchError(`${url} is ${total} bytes, the catalog's ${gguf.file} is ${expectedSize}`, part, model.id);
      }
      if (expectedSize === null) await checkDisk(total, startAt);
      // Continue the hash over the bytes already in the part, then over what comes.
      hash = startAt > 0 ? await hashFile(part, createHash('sha256'), signal) : createHash('sha256');
      resumedFrom = startAt;
      const limit = expectedSize ?? total;
      emit({ type: 'start', url, path: dest, totalBytes: limit, resumeFrom: startAt });
      let done = startAt;
      const h = hash;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, callback) {
          done += chunk.length;
          received += chunk.length;
          if (limit !== null && done > limit) {
            callback(new Error(`more than the ${limit} bytes expected`));
            return;
          }
          h.update(chunk);
          emit({ type: 'bytes', doneBytes: done, totalBytes: limit });
          callback(null, chunk);
        },
      });
      try {
        await pipeline(res, meter, createWriteStream(part, { flags: startAt > 0 ? 'a' : 'w' }), { signal });
        if (!res.complete || (limit !== null && done < limit)) throw new Error('the connection closed before the end of the file');
      } catch (err) {
        if (limit !== null && done > limit) {
          await rm(part, { force: true });
          throw mismatchError(`${url} sent more than the ${limit} bytes of ${gguf.file}`, part, model.id);
        }
        const have = fileSize(part) ?? 0;
        if (signal?.aborted) {
          throw new EnvironmentError(`download of ${gguf.file} stopped at ${formatFileSize(have)}`, {
            next: `Run cs-llm models pull ${model.id} again to continue from there (the part file ${part} is kept).`,
          });
        }
        throw new EnvironmentError(
          `download of ${gguf.file} broke off at ${formatFileSize(have)}${limit !== null ? ` of ${formatFileSize(limit)}` : ''}: ${(err as Error).message}`,
          {
            cause: err,
            next: `Run cs-llm models pull ${model.id} again: it continues the part file ${part}.`,
          },
        );
      }
      break;
    }

    emit({ type: 'verifying', path: part });
    const size = (await stat(part)).size;
    const sha = hash.digest('hex');
    if (expectedSize !== null && size !== expectedSize) {
      await rm(part, { force: true });
      throw mismatchError(`${gguf.file} came to ${size} bytes, the catalog says ${expectedSize}`, part, model.id);
    }
    if (sha !== expectedSha) {
      await rm(part, { force: true });
      throw mismatchError(`${gguf.file} has sha256 ${sha}, the catalog says ${expectedSha} (a damaged or different file)`, part, model.id);
    }
    await rename(part, dest);
    return { status: 'downloaded', id: model.id, path: dest, url, sizeBytes: size, sha256: sha, resumedFrom, downloadedBytes: received };
  } finally {
    await unlock();
  }
}
