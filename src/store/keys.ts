import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { SqliteDatabase, Synchronous } from './database.js';

export interface KeyInfo {
  id: string;
  name: string;
  /** The first characters of the key, enough to tell keys apart in a list; not enough to use one. */
  prefix: string;
  createdAt: number;
  revokedAt: number | null;
}

/**
 * API keys for the daemon. Only a SHA-256 hash and a short prefix are stored: the plaintext is returned once
 * by create() and never again. Keys are long random strings, so a fast hash is enough (no password KDF).
 */
export interface KeyStore {
  create(name: string, now: number): Promise<{ key: string; info: KeyInfo }>;
  list(): Promise<KeyInfo[]>;
  /** Revokes by id or by prefix; returns the key revoked, or null if none matched. */
  revoke(idOrPrefix: string, now: number): Promise<KeyInfo | null>;
  /** true when at least one key is not revoked: from then on every request needs a key. */
  hasActiveKeys(): Promise<boolean>;
  verify(key: string): Promise<boolean>;
  /** Grows on every create/revoke through this KeyStore, so a cache in this process can tell it is stale. */
  readonly generation: number;
}

export const KEY_PREFIX = 'csk_';
const PREFIX_LENGTH = KEY_PREFIX.length + 8;

function hashKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  hash: Buffer;
  created_at: number;
  revoked_at: number | null;
}

function toInfo(row: KeyRow): KeyInfo {
  return { id: row.id, name: row.name, prefix: row.prefix, createdAt: row.created_at, revokedAt: row.revoked_at };
}

/** KeyStore on SQLite, answering directly (sqlite-store.ts puts it behind the promises). */
export function createSqliteKeys(db: SqliteDatabase): Synchronous<KeyStore> {
  const insert = db.prepare('INSERT INTO api_keys (id, name, prefix, hash, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, NULL)');
  const all = db.prepare<[], KeyRow>('SELECT * FROM api_keys ORDER BY created_at, id');
  const byIdOrPrefix = db.prepare<[string, string], KeyRow>('SELECT * FROM api_keys WHERE (id = ? OR prefix = ?) AND revoked_at IS NULL');
  const revokeStmt = db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ?');
  const anyActive = db.prepare<[], { n: number }>('SELECT EXISTS (SELECT 1 FROM api_keys WHERE revoked_at IS NULL) AS n');
  const activeByPrefix = db.prepare<[string], KeyRow>('SELECT * FROM api_keys WHERE prefix = ? AND revoked_at IS NULL');

  let generation = 0;
  return {
    get generation() {
      return generation;
    },
    create(name, now) {
      const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
      const row: KeyRow = {
        id: randomUUID(),
        name,
        prefix: key.slice(0, PREFIX_LENGTH),
        hash: hashKey(key),
        created_at: now,
        revoked_at: null,
      };
      insert.run(row.id, row.name, row.prefix, row.hash, row.created_at);
      generation++;
      return { key, info: toInfo(row) };
    },
    list() {
      return all.all().map(toInfo);
    },
    revoke(idOrPrefix, now) {
      const rows = byIdOrPrefix.all(idOrPrefix, idOrPrefix);
      if (rows.length !== 1) return null;
      revokeStmt.run(now, rows[0]!.id);
      generation++;
      return { ...toInfo(rows[0]!), revokedAt: now };
    },
    hasActiveKeys() {
      return anyActive.get()!.n === 1;
    },
    verify(key) {
      if (!key.startsWith(KEY_PREFIX) || key.length < PREFIX_LENGTH) return false;
      const hash = hashKey(key);
      let ok = false;
      // Look up by the public prefix, then compare the hashes in constant time.
      for (const row of activeByPrefix.all(key.slice(0, PREFIX_LENGTH))) {
        if (row.hash.length === hash.length && timingSafeEqual(row.hash, hash)) ok = true;
      }
      return ok;
    },
  };
}
