import { openDatabase, type OpenDatabaseOptions, type SqliteDatabase } from './database.js';
import { createKeyStore, type KeyStore } from './keys.js';
import { createSessionStore, type ContentProtection, type SessionStore } from './sessions.js';

export interface Store {
  file: string;
  db: SqliteDatabase;
  sessions: SessionStore;
  keys: KeyStore;
  /** Checkpoints the WAL into the database file and closes it. Safe to call twice. */
  close(): void;
}

/** protection: redaction, encryption and retention of stored messages (protectionFor(config) builds it). */
export function openStore(options: OpenDatabaseOptions & { protection?: ContentProtection }): Store {
  const db = openDatabase(options);
  let closed = false;
  return {
    file: options.file,
    db,
    sessions: createSessionStore(db, options.protection),
    keys: createKeyStore(db),
    close() {
      if (closed) return;
      closed = true;
      try {
        db.pragma('wal_checkpoint(TRUNCATE)');
      } catch {
        // another connection may hold the file; SQLite checkpoints again when the last one closes
      }
      db.close();
    },
  };
}

/** The database file in force: store.path from the config, else the state directory's cs-llm.db. */
export function storeFile(config: { store: { path?: string | undefined } }, paths: { dbFile: string }): string {
  return config.store.path ?? paths.dbFile;
}
