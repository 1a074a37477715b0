// Opening the store. Its interface is in interface.ts; the SQLite implementation in sqlite-store.ts, the
// PostgreSQL one (a postgres:// URL instead of a file) in postgres-store.ts.

import type { OpenStoreOptions, Store } from './interface.js';
import { isPostgresUrl } from './postgres-db.js';
import { openPostgresStore } from './postgres-store.js';
import { openSqliteStore } from './sqlite-store.js';

export type { AuditLog, OpenStoreOptions, Store, StoreMaintenance, StoreStats } from './interface.js';
export { StoreUnavailableError } from './interface.js';
export { isPostgresUrl } from './postgres-db.js';

/**
 * Opens (creating if absent) the store at options.file, with the schema migrated: a SQLite file, or a
 * PostgreSQL database when it is a postgres:// URL.
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  if (isPostgresUrl(options.file)) return openPostgresStore(options);
  return openSqliteStore(options).store;
}

/**
 * The store in force: store.url (a postgres:// URL; CS_LLM_STORE_URL sets it) from the config, else the
 * database file store.path, else the state directory's cs-llm.db.
 */
export function storeFile(config: { store: { path?: string | undefined; url?: string | undefined } }, paths: { dbFile: string }): string {
  return config.store.url ?? config.store.path ?? paths.dbFile;
}
