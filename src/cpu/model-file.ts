/*
 * Checks on a model file before llama.cpp sees it, each failing with a line the CLI's diagnosis
 * recognises: missing, not GGUF (first four bytes), or not the file the catalog names (sha256).
 */

import { createHash } from 'node:crypto';
import { createReadStream, openSync, readSync, closeSync, statSync } from 'node:fs';

export type ModelFileProblemKind = 'missing' | 'not-gguf' | 'checksum';

export class ModelFileProblem extends Error {
  constructor(
    readonly kind: ModelFileProblemKind,
    message: string,
  ) {
    super(message);
    this.name = 'ModelFileProblem';
  }
}

export const GGUF_MAGIC = 'GGUF';

/** Pure: whether the first bytes of a file are GGUF's magic. */
export function isGgufHeader(head: Buffer): boolean {
  return head.length >= 4 && head.subarray(0, 4).toString('latin1') === GGUF_MAGIC;
}

/** The file's size; throws ModelFileProblem when it is missing, not a file or not GGUF. */
export function checkModelFile(path: string): { sizeBytes: number } {
  let size: number;
  try {
    const stat = statSync(path);
    if (!stat.isFile()) throw new ModelFileProblem('missing', `model file not found: ${path} is not a file`);
    size = stat.size;
  } catch (err) {
    if (err instanceof ModelFileProblem) throw err;
    throw new ModelFileProblem(
      'missing',
      `model file not found: ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  if (!isGgufHeader(head)) {
    throw new ModelFileProblem(
      'not-gguf',
      `model file is not GGUF: ${path} does not start with "GGUF" (its first bytes: ${head.toString('hex')})`,
    );
  }
  return { sizeBytes: size };
}

export async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export async function verifyChecksum(path: string, expected: string): Promise<void> {
  const actual = await sha256OfFile(path);
  if (actual !== expected.toLowerCase()) {
    throw new ModelFileProblem(
      'checksum',
      `model file checksum mismatch: ${path} has sha256 ${actual}, expected ${expected.toLowerCase()} (a damaged or different file)`,
    );
  }
}
