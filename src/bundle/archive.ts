/*
 * The bundle file as a tar archive on disk. Writing is sequential with explicit positions, so a header
 * whose size is only known at the end (docker save streams without a length) or the manifest (whose hashes
 * are only known at the end) is written as a placeholder and patched in place. Reading walks the headers
 * by position and hashes members as byte ranges of the file: nothing is unpacked to learn what is inside.
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import {
  parsePaxRecords,
  parseTarHeader,
  TAR_BLOCK,
  tarEnd,
  tarHeader,
  tarPadding,
  TarFormatError,
  type TarEntryType,
} from '../core/tar.js';

const CHUNK = 1024 * 1024;

export interface WrittenFile {
  size: number;
  sha256: string;
}

export class ArchiveWriter {
  private position = 0;

  private constructor(private readonly handle: FileHandle) {}

  /** Creates the file; fails if it exists. */
  static async create(path: string): Promise<ArchiveWriter> {
    return new ArchiveWriter(await open(path, 'wx', 0o644));
  }

  private async write(buffer: Buffer): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const { bytesWritten } = await this.handle.write(buffer, done, buffer.length - done, this.position + done);
      done += bytesWritten;
    }
    this.position += buffer.length;
  }

  private async patch(at: number, buffer: Buffer): Promise<void> {
    let done = 0;
    while (done < buffer.length) {
      const { bytesWritten } = await this.handle.write(buffer, done, buffer.length - done, at + done);
      done += bytesWritten;
    }
  }

  private header(path: string, type: TarEntryType, size: number, linkTarget?: string): Buffer {
    return tarHeader({ path, type, size, mode: type === 'directory' ? 0o755 : 0o644, mtime: Math.floor(Date.now() / 1000), linkTarget });
  }

  /** Reserves a member of `size` bytes filled with `fill`; returns where its data starts. */
  async reserve(path: string, size: number, fill = 0x20): Promise<number> {
    await this.write(this.header(path, 'file', size));
    const at = this.position;
    await this.write(Buffer.concat([Buffer.alloc(size, fill), Buffer.alloc(tarPadding(size))]));
    return at;
  }

  /** Overwrites reserved data (the same length or shorter; the rest keeps its fill). */
  async overwrite(at: number, data: Buffer): Promise<void> {
    await this.patch(at, data);
  }

  /**
   * Streams one file member, hashing as it writes. With a known size the header goes first; without one a
   * placeholder header is patched at the end. A source that yields another size than announced fails (a
   * file that changed while it was being bundled).
   */
  async addFile(
    path: string,
    source: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
    expectedSize: number | null,
    onBytes?: (bytes: number) => void,
  ): Promise<WrittenFile> {
    const headerAt = this.position;
    const header = this.header(path, 'file', expectedSize ?? 0);
    if (expectedSize === null && header.length !== TAR_BLOCK) throw new Error(`member path too long for a patched header: ${path}`);
    await this.write(header);
    const hash = createHash('sha256');
    let size = 0;
    for await (const raw of source) {
      const chunk = typeof raw === 'string' ? Buffer.from(raw) : raw;
      if (expectedSize !== null && size + chunk.length > expectedSize)
        throw new Error(`${path} grew while it was being written to the bundle`);
      hash.update(chunk);
      await this.write(chunk);
      size += chunk.length;
      onBytes?.(chunk.length);
    }
    if (expectedSize !== null && size !== expectedSize)
      throw new Error(`${path} is ${size} bytes, expected ${expectedSize}: it changed while it was being written to the bundle`);
    if (expectedSize === null) await this.patch(headerAt, this.header(path, 'file', size));
    const pad = tarPadding(size);
    if (pad) await this.write(Buffer.alloc(pad));
    return { size, sha256: hash.digest('hex') };
  }

  async addSymlink(path: string, target: string): Promise<void> {
    await this.write(this.header(path, 'symlink', 0, target));
  }

  /** Writes the end of the archive and flushes it to disk. */
  async finish(): Promise<number> {
    await this.write(tarEnd());
    await this.handle.sync();
    await this.handle.close();
    return this.position;
  }

  async close(): Promise<void> {
    await this.handle.close().catch(() => undefined);
  }
}

export interface ArchiveEntry {
  path: string;
  type: 'file' | 'symlink' | 'directory' | 'other';
  /** Size the header announces. */
  size: number;
  dataOffset: number;
  linkTarget: string;
  /** The file ends before this member's data does. */
  truncated: boolean;
}

export interface ArchiveIndex {
  entries: ArchiveEntry[];
  fileSize: number;
  /** Problems with the archive itself (a bad header, a missing end); members are named where known. */
  problems: string[];
}

const TYPES: Record<string, ArchiveEntry['type']> = { '0': 'file', '7': 'file', '2': 'symlink', '5': 'directory' };

export class NotATarError extends Error {}

/** Walks every header of the archive without reading member data. */
export async function readArchiveIndex(file: string): Promise<ArchiveIndex> {
  const handle = await open(file, 'r');
  try {
    const fileSize = (await handle.stat()).size;
    const entries: ArchiveEntry[] = [];
    const problems: string[] = [];
    const block = Buffer.alloc(TAR_BLOCK);
    const head = Buffer.alloc(2);
    await handle.read(head, 0, 2, 0);
    if (head[0] === 0x1f && head[1] === 0x8b) throw new NotATarError('the file is gzip-compressed');
    let at = 0;
    let pax: Record<string, string> = {};
    let ended = false;
    const after = () => (entries.length ? `after member ${entries.at(-1)!.path}` : 'at the start');
    while (at < fileSize) {
      const { bytesRead } = await handle.read(block, 0, TAR_BLOCK, at);
      if (bytesRead < TAR_BLOCK) {
        problems.push(`the file ends inside a header ${after()} (truncated)`);
        break;
      }
      let header;
      try {
        header = parseTarHeader(block);
      } catch (err) {
        if (entries.length === 0 && !(err instanceof TarFormatError && /checksum/.test(err.message)))
          throw new NotATarError((err as Error).message);
        if (entries.length === 0) throw new NotATarError('the first block is not a tar header');
        problems.push(`a corrupt header ${after()} (${(err as Error).message})`);
        break;
      }
      if (header === null) {
        ended = true;
        break;
      }
      const dataOffset = at + TAR_BLOCK;
      const next = dataOffset + header.size + tarPadding(header.size);
      if (header.typeFlag === 'x' || header.typeFlag === 'g') {
        if (header.size > 1024 * 1024 || dataOffset + header.size > fileSize) {
          problems.push(`a corrupt extended header ${after()}`);
          break;
        }
        const data = Buffer.alloc(header.size);
        await handle.read(data, 0, header.size, dataOffset);
        if (header.typeFlag === 'x') pax = parsePaxRecords(data);
        at = next;
        continue;
      }
      const entry: ArchiveEntry = {
        path: pax.path ?? header.path,
        type: TYPES[header.typeFlag] ?? 'other',
        size: header.size,
        dataOffset,
        linkTarget: pax.linkpath ?? header.linkTarget,
        truncated: dataOffset + header.size > fileSize,
      };
      pax = {};
      entries.push(entry);
      if (entry.truncated) break;
      at = next;
    }
    if (!ended && problems.length === 0 && !entries.at(-1)?.truncated)
      problems.push(`the archive has no end marker ${after()} (truncated)`);
    return { entries, fileSize, problems };
  } finally {
    await handle.close();
  }
}

/** sha256 of a byte range of a file, streamed. */
export async function hashRange(file: string, start: number, length: number, onBytes?: (bytes: number) => void): Promise<string> {
  const hash = createHash('sha256');
  if (length > 0) {
    for await (const chunk of createReadStream(file, { start, end: start + length - 1, highWaterMark: CHUNK })) {
      hash.update(chunk as Buffer);
      onBytes?.((chunk as Buffer).length);
    }
  }
  return hash.digest('hex');
}

/** A stream of a byte range of a file (an empty stream for length 0). */
export function rangeStream(file: string, start: number, length: number): NodeJS.ReadableStream & AsyncIterable<Buffer> {
  if (length === 0) return Readable.from([]) as never;
  return createReadStream(file, { start, end: start + length - 1, highWaterMark: CHUNK }) as never;
}
