/*
 * Reading a request body whole, up to a limit: the engines parse JSON bodies, and a limit keeps a runaway
 * client from filling the memory.
 */

import type { IncomingMessage } from 'node:http';

/** Largest request body the engines accept (vLLM has no small limit either; this only stops runaway input). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** The body went past the limit; the caller answers 413. */
export class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`the request body is larger than ${limit} bytes`);
  }
}

/**
 * The whole request body as text. Rejects with BodyTooLarge past `limit` bytes (what is left is drained, not
 * kept), and with an error when the client goes away before the end, so a caller never waits forever.
 */
export function readBody(req: IncomingMessage, limit: number = MAX_BODY_BYTES): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.off('data', onData);
        req.resume();
        reject(new BodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('end', () => {
      if (done) return;
      done = true;
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    });
    req.once('error', (err) => {
      if (!done) reject(err);
      done = true;
    });
    req.once('close', () => {
      if (!done) reject(new Error('the client went away before the request body ended'));
      done = true;
    });
  });
}
