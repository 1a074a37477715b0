import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { ApiError } from './api-error.js';

/**
 * Reads a request body up to `limit` bytes. Over the limit is a 413; the rest of an oversized body is read
 * and discarded (up to a cap) so the client sees the 413 instead of a reset connection.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const tooLarge = () =>
    new ApiError(413, `request body is larger than the limit of ${limit} bytes`, {
      code: 'body_too_large',
      headers: { connection: 'close' },
    });
  const declared = Number(req.headers['content-length']);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let over = Number.isFinite(declared) && declared > limit;
    const discardCap = limit * 8;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (over || size > limit) {
        over = true;
        chunks.length = 0;
        if (size > discardCap) {
          req.removeAllListeners('data');
          req.resume();
          reject(tooLarge());
        }
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (over) reject(tooLarge());
      else {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        // Decoding would turn bad bytes into replacement characters, which the engine and the store would get.
        if (isUtf8(body)) resolve(body);
        else reject(new ApiError(400, 'the request body is not valid UTF-8; send JSON encoded as UTF-8', { code: 'invalid_encoding' }));
      }
    });
    req.on('error', (err) => reject(err));
    // A client that leaves mid-body: settle so nothing waits forever (a settled promise ignores this).
    req.on('close', () => {
      if (!req.complete) reject(new ApiError(400, 'the client closed the connection before the body ended', { code: 'client_closed' }));
    });
  });
}
