import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { UsageError } from '../core/errors.js';
import { DEFAULT_TENANT, isTenantName } from '../core/tenant.js';
import type { SqliteDatabase, Synchronous } from './database.js';

export interface KeyInfo {
  id: string;
  name: string;
  /** The first characters of the key, enough to tell keys apart in a list; not enough to use one. */
  prefix: string;
  /** The tenant whose conversations the key reaches (docs/daemon.md: tenants). */
  tenant: string;
  /** The profiles the key may name with X-Profile, its default first; null: every profile. */
  profiles: string[] | null;
  /** An operator's key: every tenant's sessions, /metrics. */
  admin: boolean;
  createdAt: number;
  revokedAt: number | null;
}

/** What a new key may reach: its tenant (default: the default tenant), profiles (default: all), admin. */
export interface KeyScope {
  tenant?: string;
  profiles?: readonly string[] | null;
  admin?: boolean;
}

/**
 * API keys for the daemon. Only a SHA-256 hash and a short prefix are stored: the plaintext is returned once
 * by create() and never again. Keys are long random strings, so a fast hash is enough (no password KDF).
 */
export interface KeyStore {
  create(name: string, now: number, scope?: KeyScope): Promise<{ key: string; info: KeyInfo }>;
  list(): Promise<KeyInfo[]>;
  /** Revokes by id or by prefix; returns the key revoked, or null if none matched. */
  revoke(idOrPrefix: string, now: number): Promise<KeyInfo | null>;
  /** true when at least one key is not revoked: from then on every request needs a key. */
  hasActiveKeys(): Promise<boolean>;
  /**
   * The key's row when `key` is an active key, else null: one lookup, which also gives the key's tenant,
   * profiles and admin flag, so a request is authorised and scoped at once.
   */
  verify(key: string): Promise<KeyInfo | null>;
  /** Grows on every create/revoke through this KeyStore, so a cache in this process can tell it is stale. */
  readonly generation: number;
}

export const KEY_PREFIX = 'csk_';
const PREFIX_LENGTH = KEY_PREFIX.length + 8;

function hashKey(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}

/** A key's row as both stores keep it (api_keys). */
export interface KeyRow {
  id: string;
  name: string;
  prefix: string;
  hash: Buffer;
  tenant: string;
  profiles: string | null;
  admin: number;
  created_at: number;
  revoked_at: number | null;
}

export function toInfo(row: KeyRow): KeyInfo {
  return {
    id: row.id,
    name: row.name,
    prefix: row.prefix,
    tenant: row.tenant,
    profiles: row.profiles === null ? null : (JSON.parse(row.profiles) as string[]),
    admin: row.admin === 1,
    createdAt: row.created_at,
    revokedAt: row.revoked_at,
  };
}

/** A new key and its row: the key is shown once; only its hash and public prefix are stored. */
export function newKey(name: string, now: number, scope: KeyScope = {}): { key: string; row: KeyRow } {
  const key = `${KEY_PREFIX}${randomBytes(32).toString('base64url')}`;
  const tenant = scope.tenant ?? DEFAULT_TENANT;
  if (!isTenantName(tenant)) throw new UsageError(`tenant "${tenant}" must be 1-64 letters, digits, ".", "_" or "-"`);
  const profiles = scope.profiles && scope.profiles.length > 0 ? [...new Set(scope.profiles)] : null;
  return {
    key,
    row: {
      id: randomUUID(),
      name,
      prefix: key.slice(0, PREFIX_LENGTH),
      hash: hashKey(key),
      tenant,
      profiles: profiles && JSON.stringify(profiles),
      admin: scope.admin ? 1 : 0,
      created_at: now,
      revoked_at: null,
    },
  };
}

/** The public prefix to look a presented key up by; null when it cannot be one of ours. */
export function prefixOf(key: string): string | null {
  return key.startsWith(KEY_PREFIX) && key.length >= PREFIX_LENGTH ? key.slice(0, PREFIX_LENGTH) : null;
}

/** Which of the active rows with the key's prefix the key is: the hashes compared in constant time, every row. */
export function matchKey(key: string, rows: readonly KeyRow[]): KeyInfo | null {
  const hash = hashKey(key);
  let found: KeyRow | null = null;
  for (const row of rows) if (row.hash.length === hash.length && timingSafeEqual(row.hash, hash)) found = row;
  return found && toInfo(found);
}

/** KeyStore on SQLite, answering directly (sqlite-store.ts puts it behind the promises). */
export function createSqliteKeys(db: SqliteDatabase): Synchronous<KeyStore> {
  const insert = db.prepare(
    'INSERT INTO api_keys (id, name, prefix, hash, tenant, profiles, admin, created_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)',
  );
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
    create(name, now, scope = {}) {
      const { key, row } = newKey(name, now, scope);
      insert.run(row.id, row.name, row.prefix, row.hash, row.tenant, row.profiles, row.admin, row.created_at);
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
      const prefix = prefixOf(key);
      return prefix === null ? null : matchKey(key, activeByPrefix.all(prefix));
    },
  };
}
