/*
 * `cs-llm models pull <id>`: one catalog GGUF onto this host, checked. The bytes go to `<file>.part` next
 * to the final name; a later run continues that part with a Range request (servers that ignore Range send
 * the whole file and the part starts over). Size and sha256 are checked before the rename, so the engine
 * never sees a file that is not the catalog's; a mismatch removes the part. An entry without sizeBytes is
 * capped at its weightsBytes plus a margin, and the free disk is checked for that before any request. The
 * part file and its lock (part-file.ts) are never followed through a link; the token's rules live with the
 * HTTP client (pull-http.ts).
 */

import { createHash, type Hash } from 'node:crypto';
import { createReadStream, statSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { freeDisk as probeFreeDisk, type FreeDisk } from '../core/disk.js';
import { ConflictError, CsLlmError, EnvironmentError, NotFoundError, UsageError } from '../core/errors.js';
import { formatFileSize, ggufDownloadUrl } from './gguf-source.js';
import { openPartFile, partFileSize, takePartLock } from './part-file.js';
import { discard, get, header, tokenOrigin } from './pull-http.js';
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
  /** Sent as a bearer token, only to the endpoint's own origin and only over https (pull-http.ts). */
  token?: string;
  /** Certificates to trust for https instead of the usual ones (tests; the CLI has NODE_EXTRA_CA_CERTS). */
  ca?: string | Buffer;
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

/** Room left beyond the file itself: file system overhead and whatever else writes there meanwhile. */
const DISK_MARGIN_BYTES = 64 * 1024 ** 2;

/**
 * The most bytes taken for an entry without sizeBytes: its weightsBytes (a GGUF file is the weights) plus
 * 10%, at least 64 MiB, for an entry whose figure was rounded or estimated. The sha256 still decides.
 */
export function unknownSizeCap(weightsBytes: number): { cap: number; margin: number } {
  const margin = Math.max(64 * 1024 ** 2, Math.ceil(weightsBytes / 10));
  return { cap: weightsBytes + margin, margin };
}

async function hashFile(path: string, hash: Hash = createHash('sha256'), signal?: AbortSignal): Promise<Hash> {
  for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  return hash;
}

/** The hash of the part file's bytes, read without following a link at its path. */
async function hashPart(part: string, signal?: AbortSignal): Promise<Hash> {
  const hash = createHash('sha256');
  const handle = await openPartFile(part, 'read');
  try {
    for await (const chunk of handle.createReadStream({ autoClose: false, signal })) hash.update(chunk as Buffer);
  } finally {
    await handle.close();
  }
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
  // No size in the entry: a server could send without end; its weightsBytes bounds what is taken.
  const sizeless = expectedSize === null ? unknownSizeCap(model.weightsBytes) : null;
  const ceiling = expectedSize ?? sizeless!.cap;
  const capNote = sizeless ? ` (the entry has no gguf.sizeBytes: its weightsBytes ${model.weightsBytes} plus ${sizeless.margin})` : '';
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
  const unlock = await takePartLock(`${part}.lock`, part);
  try {
    let partSize = partFileSize(part);
    if (partSize > ceiling) {
      await rm(part, { force: true });
      partSize = 0;
    }
    const checkDisk = async (total: number, from: number) => {
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
    // Before any request: for the file's size, or, without one, for the most that will be taken.
    await checkDisk(ceiling, partSize);

    let hash = createHash('sha256');
    let received = 0;
    let resumedFrom = 0;
    let restarts = 0;
    for (;;) {
      if (partSize > 0 && expectedSize !== null && partSize === expectedSize) {
        // The bytes are all here (a run stopped between the last byte and the rename): only check them.
        hash = await hashPart(part, signal);
        resumedFrom = partSize;
        break;
      }
      const range = partSize > 0 ? partSize : null;
      const httpOptions = { range, token: options.token, tokenOrigin: tokenOrigin(endpoint), signal, idleTimeoutMs, ca: options.ca };
      const { res, tokenSent } = await get(url, httpOptions).catch((err: unknown) => {
        if (err instanceof CsLlmError) throw err;
        throw new EnvironmentError(`cannot download ${url}: ${(err as Error).message}`, {
          cause: err,
          next: `Check the network and the endpoint (${endpoint}; HF_ENDPOINT or engine.hfEndpoint set a mirror), then run cs-llm models pull ${model.id} again${partSize > 0 ? ': it continues the part file' : ''}.`,
        });
      });
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
        const withheld =
          options.token && !tokenSent
            ? `HF_TOKEN is set but was not sent: it goes only to the endpoint's own origin (${endpoint}) and only over https. `
            : '';
        throw new EnvironmentError(`${url} answered ${status}${hubWhy}: the server wants a token, or refuses this client`, {
          next:
            `${withheld}For a gated or private repository export HF_TOKEN=<your token> (sent only to an https endpoint itself), then run the command again; ` +
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
      if (sizeless && total !== null && total > sizeless.cap) {
        discard(res);
        await rm(part, { force: true });
        throw new EnvironmentError(`${url} is ${total} bytes, more than the ${sizeless.cap} allowed for ${gguf.file}${capNote}`, {
          next: `Check the entry ${model.id} (its weightsBytes, or add gguf.sizeBytes and gguf.sha256 from the file's page) and the URL, then run the command again.`,
        });
      }
      if (sizeless && total !== null) await checkDisk(total, startAt);
      // Continue the hash over the bytes already in the part, then over what comes.
      hash = startAt > 0 ? await hashPart(part, signal) : createHash('sha256');
      resumedFrom = startAt;
      // The exact size when known (the entry's, else the server's); else only the ceiling bounds the body.
      const exact = expectedSize ?? total;
      const limit = exact ?? ceiling;
      emit({ type: 'start', url, path: dest, totalBytes: exact, resumeFrom: startAt });
      let done = startAt;
      const h = hash;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, callback) {
          done += chunk.length;
          received += chunk.length;
          if (done > limit) {
            callback(new Error(`more than the ${limit} bytes expected`));
            return;
          }
          h.update(chunk);
          emit({ type: 'bytes', doneBytes: done, totalBytes: exact });
          callback(null, chunk);
        },
      });
      const out = await openPartFile(part, startAt > 0 ? 'append' : 'truncate').catch((err: unknown) => {
        res.destroy();
        throw err;
      });
      try {
        await pipeline(res, meter, out.createWriteStream(), { signal });
        if (!res.complete || (exact !== null && done < exact)) throw new Error('the connection closed before the end of the file');
      } catch (err) {
        if (done > limit) {
          await rm(part, { force: true });
          throw mismatchError(
            exact !== null
              ? `${url} sent more than the ${limit} bytes of ${gguf.file}`
              : `${url} sent more than the ${limit} bytes allowed for ${gguf.file}${capNote}`,
            part,
            model.id,
          );
        }
        const have = partFileSize(part);
        if (signal?.aborted) {
          throw new EnvironmentError(`download of ${gguf.file} stopped at ${formatFileSize(have)}`, {
            next: `Run cs-llm models pull ${model.id} again to continue from there (the part file ${part} is kept).`,
          });
        }
        throw new EnvironmentError(
          `download of ${gguf.file} broke off at ${formatFileSize(have)}${exact !== null ? ` of ${formatFileSize(exact)}` : ''}: ${(err as Error).message}`,
          {
            cause: err,
            next: `Run cs-llm models pull ${model.id} again: it continues the part file ${part}.`,
          },
        );
      }
      break;
    }

    emit({ type: 'verifying', path: part });
    const size = partFileSize(part);
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
