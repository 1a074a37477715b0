/*
 * Reading a request body whole, up to a limit: the engines parse JSON bodies, and a limit keeps a runaway
 * client from filling the memory.
 */

import type { IncomingMessage } from 'node:http';

/** Largest request body the engines accept (vLLM has no small limit either; this only stops runaway input). */
export const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** The whole request body as text; rejects past MAX_BODY_BYTES (the caller answers 413). */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new Error('body too large'));
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.once('error', reject);
  });
}
