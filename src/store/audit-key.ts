/*
 * The audit log's key: the secret the chain's HMAC-SHA-256 is computed with, kept in a file outside the
 * database so that write access to the database is not enough to rewrite the log and sign it again.
 * The file holds one key per line (base64 of 32 bytes, then the time it was made); the first is the one in
 * force, the ones after it are earlier keys kept so that the records they chained still verify. Lines
 * starting with # are comments.
 */

import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, EnvironmentError } from '../core/errors.js';

export interface AuditKey {
  /** A short hash of the key, stored in the database with what it signed; never the key itself. */
  id: string;
  key: Buffer;
  /** When it was made (ms), if the file says. */
  createdAt: number | null;
}

export interface AuditKeyring {
  file: string;
  /** The key new records are chained with: the file's first. */
  current: AuditKey;
  /** Every key in the file, the one in force first. */
  keys: AuditKey[];
  byId(id: string): Buffer | undefined;
  /**
   * When the file's first key was made: records chained with plain SHA-256 (before any key) cannot be newer.
   * Null when the file does not say.
   */
  createdAt: number | null;
}

const HEADER = [
  '# cs-llm audit log key (HMAC-SHA-256 over the audit chain). Keep a copy apart from the database backups:',
  '# without it the records it chained cannot be verified. The first key is in force; later lines are earlier',
  '# keys, kept so that the records they chained still verify. See docs/compliance.md (audit key).',
];

export function auditKeyIdOf(key: Buffer): string {
  return createHash('sha256').update('cs-llm audit key id\0').update(key).digest('hex').slice(0, 12);
}

/** store.auditKeyFile, else audit.key in the state directory. */
export function auditKeyFile(config: { store: { auditKeyFile?: string | undefined } }, paths: { stateDir: string }): string {
  return config.store.auditKeyFile ?? join(paths.stateDir, 'audit.key');
}

function ring(file: string, keys: AuditKey[]): AuditKeyring {
  const byId = new Map(keys.map((k) => [k.id, k.key]));
  const times = keys.map((k) => k.createdAt).filter((t): t is number => t !== null);
  return { file, current: keys[0]!, keys, byId: (id) => byId.get(id), createdAt: times.length > 0 ? Math.min(...times) : null };
}

function newKey(): AuditKey {
  const key = randomBytes(32);
  return { id: auditKeyIdOf(key), key, createdAt: Date.now() };
}

function parseRing(file: string, text: string): AuditKeyring {
  const keys: AuditKey[] = [];
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const [text = '', created] = line.split(/\s+/);
    const key = /^[A-Za-z0-9+/]+={0,2}$/.test(text) ? Buffer.from(text, 'base64') : Buffer.alloc(0);
    const createdAt = created === undefined ? null : Date.parse(created);
    if (key.length !== 32 || Number.isNaN(createdAt)) {
      throw new ConfigError(`audit key file ${file}, line ${i + 1}: expected base64 of 32 bytes and the time it was made`, {
        next: 'Restore the file from your backup. It is written by cs-llm (the daemon on first start, cs-llm audit new-key); do not edit it.',
      });
    }
    keys.push({ id: auditKeyIdOf(key), key, createdAt });
  }
  if (keys.length === 0) {
    throw new ConfigError(`audit key file ${file} holds no key`, {
      next: 'Restore the file from your backup, or remove it: the daemon then creates a new one (if the audit log was never keyed).',
    });
  }
  return ring(file, keys);
}

/** The keys in `file`, or null when it does not exist. Refuses a file other users may read or change. */
export function readAuditKeyring(file: string): AuditKeyring | null {
  let text: string;
  try {
    const mode = statSync(file).mode & 0o777;
    // Group read is allowed (a root-owned key the daemon's group reads); anything wider lets others sign.
    if ((mode & 0o027) !== 0) {
      throw new ConfigError(
        `audit key file ${file} has mode 0${mode.toString(8)}: other users could read it and sign a rewritten audit log`,
        {
          next: `chmod 600 ${file}`,
        },
      );
    }
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    if (err instanceof ConfigError) throw err;
    throw new EnvironmentError(`cannot read audit key file ${file}: ${(err as Error).message}`, {
      next: 'Check that this user may read it (store.auditKeyFile in the config sets where it is).',
      cause: err,
    });
  }
  return parseRing(file, text);
}

function writeRing(file: string, keys: AuditKey[], exclusive: boolean): void {
  const dir = dirname(file);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const line = (k: AuditKey) => `${k.key.toString('base64')}${k.createdAt === null ? '' : ` ${new Date(k.createdAt).toISOString()}`}`;
  const text = [...HEADER, ...keys.map(line), ''].join('\n');
  // A new file is created 0600 from the start; a rewrite goes through a temporary file and a rename, so a
  // crash leaves either the old file or the new one, never half of one.
  const target = exclusive ? file : `${file}.tmp-${process.pid}`;
  let fd: number;
  try {
    fd = openSync(target, exclusive ? 'wx' : 'w', 0o600);
  } catch (err) {
    throw new EnvironmentError(`cannot create audit key file ${target}: ${(err as Error).message}`, {
      next: `Check that ${dir} is writable by this user, or set store.auditKeyFile to a writable place.`,
      cause: err,
    });
  }
  try {
    chmodSync(target, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  if (!exclusive) renameSync(target, file);
}

/** A new key file with one random key; fails if the file exists (a key is never overwritten). */
export function createAuditKeyring(file: string): AuditKeyring {
  const keys = [newKey()];
  writeRing(file, keys, true);
  return ring(file, keys);
}

/** Puts a new random key in force in `file` (created if absent); the keys already in it are kept after it. */
export function addAuditKey(file: string): AuditKeyring {
  const existing = readAuditKeyring(file);
  if (!existing) return createAuditKeyring(file);
  const keys = [newKey(), ...existing.keys];
  writeRing(file, keys, false);
  return ring(file, keys);
}
