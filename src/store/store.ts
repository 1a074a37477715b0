// Opening the store. Its interface is in interface.ts; the SQLite implementation in sqlite-store.ts, the
// PostgreSQL one (a postgres:// URL instead of a file) in postgres-store.ts.

import type { OpenStoreOptions, Store } from './interface.js';
import { isPostgresUrl } from './location.js';
import { openSqliteStore } from './sqlite-store.js';

export type { AuditLog, OpenStoreOptions, Store, StoreMaintenance, StoreStats } from './interface.js';
export { StoreUnavailableError } from './interface.js';
export { isPostgresUrl, redactUrl } from './location.js';

/**
 * Opens (creating if absent) the store at options.file, with the schema migrated: a SQLite file, or a
 * PostgreSQL database when it is a postgres:// URL.
 */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  // The PostgreSQL driver is loaded only for a store that uses it.
  if (isPostgresUrl(options.file)) return (await import('./postgres-store.js')).openPostgresStore(options);
  return openSqliteStore(options).store;
}

/**
 * The store in force: store.path (a file, or a postgres:// URL; --db sets it) from the config, else store.url
 * (a postgres:// URL; CS_LLM_STORE_URL sets it), else the state directory's cs-llm.db. The path wins so that
 * a command's --db reaches the store it names even where CS_LLM_STORE_URL is set.
 */
export function storeFile(config: { store: { path?: string | undefined; url?: string | undefined } }, paths: { dbFile: string }): string {
  return config.store.path ?? config.store.url ?? paths.dbFile;
}
