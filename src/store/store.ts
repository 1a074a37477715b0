// Opening the store. Its interface is in interface.ts; the SQLite implementation in sqlite-store.ts.

import type { OpenStoreOptions, Store } from './interface.js';
import { openSqliteStore } from './sqlite-store.js';

export type { AuditLog, OpenStoreOptions, Store, StoreMaintenance, StoreStats } from './interface.js';

/** Opens (creating if absent) the store at options.file, with the schema migrated. */
export async function openStore(options: OpenStoreOptions): Promise<Store> {
  return openSqliteStore(options).store;
}

/** The database file in force: store.path from the config, else the state directory's cs-llm.db. */
export function storeFile(config: { store: { path?: string | undefined } }, paths: { dbFile: string }): string {
  return config.store.path ?? paths.dbFile;
}
