/*
 * The engine image in and out of Docker: saved by name (an image saved by id loads back as <none>:<none>),
 * loaded from a stream. dockerd answers a failed load with HTTP 200 and puts the error in the progress
 * stream, so the whole stream is read and every event checked (FACTS.md section 7).
 */

import type Docker from 'dockerode';
import { EnvironmentError } from '../core/errors.js';
import { dockerErrorMessage } from '../engine/diagnose.js';
import { isNotFound } from '../engine/pull.js';

export interface ImageFacts {
  id: string;
  repoTags: string[];
  sizeBytes: number;
}

export async function inspectImage(docker: Docker, ref: string): Promise<ImageFacts | null> {
  try {
    const info = await docker.getImage(ref).inspect();
    return { id: info.Id, repoTags: info.RepoTags ?? [], sizeBytes: info.Size ?? 0 };
  } catch (err) {
    if (isNotFound(err)) return null;
    throw err;
  }
}

/** A reference that is an image id or digest cannot carry a tag through save and load. */
export function isIdReference(ref: string): boolean {
  return /^(sha256:)?[0-9a-f]{12,64}$/.test(ref) || ref.includes('@sha256:');
}

/** docker save of the references, as one tar stream (by name, so their tags come back on load). */
export async function saveImage(docker: Docker, refs: string[]): Promise<NodeJS.ReadableStream> {
  try {
    if (refs.length === 1) return (await docker.getImage(refs[0]!).get()) as NodeJS.ReadableStream;
    // GET /images/get?names=...: in dockerode, not in its type definitions.
    const withGetImages = docker as unknown as { getImages(opts: { names: string[] }): Promise<NodeJS.ReadableStream> };
    return await withGetImages.getImages({ names: refs });
  } catch (err) {
    throw new EnvironmentError(`cannot save image ${refs.join(', ')} from Docker: ${dockerErrorMessage(err)}`, {
      next: 'Check that the image is on this host (docker image ls) and that dockerd has room in its data root.',
      cause: err,
    });
  }
}

interface LoadEvent {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/** Everything dockerd said while loading: "Loaded image: ..." lines, or the first error in the stream. */
export interface LoadOutcome {
  loaded: string[];
}

/** Parses dockerd's load response: resolves at its end, rejects on a stream error or any {"error"} event. */
export function followLoad(stream: NodeJS.ReadableStream): Promise<LoadOutcome> {
  return new Promise<LoadOutcome>((resolve, reject) => {
    const loaded: string[] = [];
    let buffered = '';
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      if (err) reject(err);
      else resolve({ loaded });
    };
    const handle = (line: string) => {
      const text = line.trim();
      if (!text) return;
      let event: LoadEvent;
      try {
        event = JSON.parse(text) as LoadEvent;
      } catch {
        // dockerd answers a malformed archive with plain text in some versions: that is a failure too.
        finish(new Error(text));
        return;
      }
      if (event.error || event.errorDetail?.message) {
        finish(new Error(event.error ?? event.errorDetail?.message));
        return;
      }
      const match = event.stream?.match(/Loaded image(?: ID)?: (\S+)/);
      if (match) loaded.push(match[1]!);
    };
    stream.on('data', (chunk: Buffer | string) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        handle(buffered.slice(0, newline));
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
      }
    });
    stream.on('error', (err: Error) => finish(err));
    stream.on('end', () => {
      handle(buffered);
      finish();
    });
    stream.on('close', () => {
      handle(buffered);
      buffered = '';
      finish();
    });
  });
}

/** docker load of a tar (or gzip) stream, checked to the end. */
export async function loadImage(docker: Docker, archive: NodeJS.ReadableStream): Promise<LoadOutcome> {
  let response: NodeJS.ReadableStream;
  try {
    response = (await docker.loadImage(archive as never)) as NodeJS.ReadableStream;
  } catch (err) {
    throw new EnvironmentError(`dockerd refused the image: ${dockerErrorMessage(err)}`, {
      next: 'Check dockerd (docker info) and its disk space, then run bundle load again.',
      cause: err,
    });
  }
  try {
    return await followLoad(response);
  } catch (err) {
    throw new EnvironmentError(`loading the image into Docker failed: ${(err as Error).message}`, {
      next: 'Check dockerd (docker info) and the room in its data root, then run bundle load again (it skips what is already in place).',
      cause: err,
    });
  }
}
