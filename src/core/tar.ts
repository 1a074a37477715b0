/*
 * The tar format as cs-llm writes and reads it: POSIX ustar headers, a pax extended header where a path or
 * link target is too long for ustar, and base-256 sizes above ustar's 8 GiB limit (GNU tar and Go's
 * archive/tar, which dockerd uses, both read that). Headers only: callers stream the data themselves, so a
 * multi-gigabyte member never sits in memory. Used for the simulator image (src/engine/sim-image.ts) and
 * for offline bundles (src/bundle/).
 */

export const TAR_BLOCK = 512;

export type TarEntryType = 'file' | 'directory' | 'symlink';

export interface TarHeaderFields {
  path: string;
  type: TarEntryType;
  /** Bytes of data that follow (0 for directories and symlinks). */
  size: number;
  mode: number;
  /** Seconds since the epoch. */
  mtime: number;
  /** For symlinks: where the link points, as written in the link. */
  linkTarget?: string;
}

const TYPE_FLAG: Record<TarEntryType, string> = { file: '0', directory: '5', symlink: '2' };
/** The largest size that fits ustar's 11 octal digits. */
const MAX_OCTAL_SIZE = 0o77777777777;

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** Bytes of zero padding after `size` bytes of data, up to the next block. */
export function tarPadding(size: number): number {
  return (TAR_BLOCK - (size % TAR_BLOCK)) % TAR_BLOCK;
}

/** The two zero blocks that end an archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * TAR_BLOCK);
}

function writeSize(header: Buffer, size: number): void {
  if (size <= MAX_OCTAL_SIZE) {
    header.write(octal(size, 12), 124, 12, 'ascii');
    return;
  }
  // Base-256: the high bit of the first byte marks it; the value is big-endian in the 12 bytes.
  header.fill(0, 124, 136);
  header[124] = 0x80;
  let rest = BigInt(size);
  for (let i = 135; i > 124 && rest > 0n; i--) {
    header[i] = Number(rest & 0xffn);
    rest >>= 8n;
  }
}

function checksum(header: Buffer): number {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : header[i]!;
  return sum;
}

/** ustar splits a long path into prefix (155) + "/" + name (100); null when no split fits. */
function splitUstarPath(path: string): { name: string; prefix: string } | null {
  if (Buffer.byteLength(path) <= 100) return { name: path, prefix: '' };
  const trailing = path.endsWith('/') ? '/' : '';
  const trimmed = trailing ? path.slice(0, -1) : path;
  for (let cut = trimmed.lastIndexOf('/'); cut > 0; cut = trimmed.lastIndexOf('/', cut - 1)) {
    const prefix = trimmed.slice(0, cut);
    const name = trimmed.slice(cut + 1) + trailing;
    if (Buffer.byteLength(name) <= 100 && Buffer.byteLength(prefix) <= 155) return { name, prefix };
    if (Buffer.byteLength(name) > 100) return null;
  }
  return null;
}

/** One pax record: "<length> <key>=<value>\n", where the length counts the whole record itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

function ustarBlock(fields: TarHeaderFields, name: string, prefix: string, linkTarget: string, type: string): Buffer {
  const header = Buffer.alloc(TAR_BLOCK);
  header.write(name, 0, 100, 'utf8');
  header.write(octal(fields.mode & 0o7777, 8), 100, 8, 'ascii');
  header.write(octal(0, 8), 108, 8, 'ascii');
  header.write(octal(0, 8), 116, 8, 'ascii');
  writeSize(header, fields.size);
  header.write(octal(Math.max(0, Math.floor(fields.mtime)), 12), 136, 12, 'ascii');
  header.write(type, 156, 1, 'ascii');
  header.write(linkTarget, 157, 100, 'utf8');
  header.write('ustar\0', 257, 6, 'ascii');
  header.write('00', 263, 2, 'ascii');
  header.write('root', 265, 32, 'ascii');
  header.write('root', 297, 32, 'ascii');
  header.write(prefix, 345, 155, 'utf8');
  header.write(`${checksum(header).toString(8).padStart(6, '0')}\0 `, 148, 8, 'ascii');
  return header;
}

/**
 * The header of one entry: one 512-byte block, or three or more when a pax header carries a long path
 * or link target. The data (fields.size bytes) and its padding follow it.
 */
export function tarHeader(fields: TarHeaderFields): Buffer {
  const path = fields.type === 'directory' && !fields.path.endsWith('/') ? `${fields.path}/` : fields.path;
  const linkTarget = fields.linkTarget ?? '';
  const split = splitUstarPath(path);
  const longLink = Buffer.byteLength(linkTarget) > 100;
  const type = TYPE_FLAG[fields.type];
  if (split && !longLink) return ustarBlock(fields, split.name, split.prefix, linkTarget, type);
  let records = '';
  if (!split) records += paxRecord('path', path);
  if (longLink) records += paxRecord('linkpath', linkTarget);
  const data = Buffer.from(records, 'utf8');
  const base = path.replace(/\/$/, '').split('/').pop() ?? 'entry';
  const paxName = `PaxHeaders/${base}`.slice(0, 100);
  const paxHeader = ustarBlock({ path: paxName, type: 'file', size: data.length, mode: 0o644, mtime: fields.mtime }, paxName, '', '', 'x');
  const short = split ?? { name: path.slice(0, 100), prefix: '' };
  return Buffer.concat([
    paxHeader,
    data,
    Buffer.alloc(tarPadding(data.length)),
    ustarBlock(fields, short.name, short.prefix, longLink ? linkTarget.slice(0, 100) : linkTarget, type),
  ]);
}

/** What a reader finds in one 512-byte header block. */
export interface ParsedTarHeader {
  path: string;
  /** '0' file, '2' symlink, '5' directory, 'x' pax, 'g' global pax; anything else as found. */
  typeFlag: string;
  size: number;
  mode: number;
  linkTarget: string;
}

export class TarFormatError extends Error {}

function readString(block: Buffer, start: number, length: number): string {
  const slice = block.subarray(start, start + length);
  const end = slice.indexOf(0);
  return slice.subarray(0, end === -1 ? length : end).toString('utf8');
}

function readNumber(block: Buffer, start: number, length: number): number {
  if (block[start]! & 0x80) {
    let value = 0n;
    for (let i = start + 1; i < start + length; i++) value = (value << 8n) | BigInt(block[i]!);
    return Number(value);
  }
  const text = readString(block, start, length).trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`not an octal number: "${text}"`);
  return parseInt(text, 8);
}

/** Parses one header block; null for an all-zero block (the end of the archive). Checks the checksum. */
export function parseTarHeader(block: Buffer): ParsedTarHeader | null {
  if (block.length !== TAR_BLOCK) throw new TarFormatError(`a header block is ${TAR_BLOCK} bytes, got ${block.length}`);
  if (block.every((b) => b === 0)) return null;
  const stored = readNumber(block, 148, 8);
  if (stored !== checksum(block)) throw new TarFormatError('header checksum mismatch');
  const name = readString(block, 0, 100);
  const magic = readString(block, 257, 6);
  const prefix = magic.startsWith('ustar') ? readString(block, 345, 155) : '';
  return {
    path: prefix ? `${prefix}/${name}` : name,
    typeFlag: String.fromCharCode(block[156]!) === '\0' ? '0' : String.fromCharCode(block[156]!),
    size: readNumber(block, 124, 12),
    mode: readNumber(block, 100, 8),
    linkTarget: readString(block, 157, 100),
  };
}

/** The key=value records of a pax header's data. */
export function parsePaxRecords(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) break;
    const length = Number(data.subarray(at, space).toString('ascii'));
    if (!Number.isInteger(length) || length <= 0 || at + length > data.length) throw new TarFormatError('malformed pax record');
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return out;
}
