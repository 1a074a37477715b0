import Database from 'better-sqlite3';
import { dirname } from 'node:path';
import { ConfigError, EnvironmentError, errorMessage } from '../core/errors.js';
import { ensurePrivateDir } from '../core/paths.js';
import { migrate } from './migrations.js';

export type SqliteDatabase = Database.Database;

/**
 * An interface's methods answering directly instead of through a promise: what the SQLite implementations
 * give (better-sqlite3 is synchronous); sqlite-store.ts puts them behind the promises of the interfaces.
 */
export type Synchronous<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => Promise<infer R> ? (...args: A) => R : T[K];
};

export interface OpenDatabaseOptions {
  file: string;
  /**
   * NORMAL (default): in WAL mode a committed transaction survives a crash of the process; only a power loss
   * or OS crash can roll back the last transactions before the next checkpoint. FULL also survives those,
   * at about 10x the cost per append (an fsync per commit).
   */
  synchronous?: 'NORMAL' | 'FULL';
  /** How long a writer waits for another connection's lock before SQLITE_BUSY. */
  busyTimeoutMs?: number;
  /** PostgreSQL (a postgres:// file): connections in the pool (default 10). */
  poolSize?: number;
}

/**
 * Turns SQLite's failure codes into errors a person can act on. The file is never deleted or recreated
 * here: a damaged database is the operator's data, and only the operator decides to move it aside.
 */
export function explainOpenError(err: unknown, file: string): Error {
  const code = (err as { code?: string }).code ?? '';
  const message = errorMessage(err);
  if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT' || /not a database|malformed/i.test(message)) {
    return new EnvironmentError(`database file ${file} is damaged or is not a SQLite database (${message})`, {
      next: `Stop the daemon, move the file aside (mv ${file} ${file}.broken) and start again to create a new one, or restore it from a backup. cs-llm never deletes it for you.`,
      cause: err,
    });
  }
  if (code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' || /locked/i.test(message)) {
    return new EnvironmentError(`database file ${file} is locked by another process (${message})`, {
      next: 'Stop the other process that holds it (cs-llm daemon status shows a running daemon), or use another file with --db.',
      cause: err,
    });
  }
  if (
    code === 'SQLITE_CANTOPEN' ||
    code === 'SQLITE_READONLY' ||
    code === 'SQLITE_PERM' ||
    code === 'SQLITE_IOERR' ||
    /EACCES|EROFS|permission/i.test(message)
  ) {
    return new EnvironmentError(`cannot open database file ${file} for writing (${message})`, {
      next: `Check that ${dirname(file)} exists and is writable by this user, or use another file with --db (or store.path in the config).`,
      cause: err,
    });
  }
  if (err instanceof ConfigError || err instanceof EnvironmentError) return err;
  return new EnvironmentError(`cannot open database file ${file}: ${message}`, {
    next: 'Check the file and its directory, or use another file with --db.',
    cause: err,
  });
}

/** Opens (creating if absent) the database, sets the pragmas and applies pending migrations. */
export function openDatabase(options: OpenDatabaseOptions): SqliteDatabase {
  const { file } = options;
  if (file !== ':memory:') {
    try {
      ensurePrivateDir(dirname(file));
    } catch (err) {
      throw explainOpenError(err, file);
    }
  }
  let db: SqliteDatabase | undefined;
  // SQLite creates the database (0644 less the umask) and then its -wal and -shm files (with the database's
  // mode) while it opens: under umask 077 each is 0600 from its creation, never readable by others for a
  // moment. Synchronous, so nothing else in this process runs under the narrower umask.
  const umask = process.umask(0o077);
  try {
    db = new Database(file);
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 5000}`);
    // The first real read: a file that is not a database fails here, before anything writes to it.
    db.pragma('schema_version', { simple: true });
    const mode = db.pragma('journal_mode = WAL', { simple: true }) as string;
    if (file !== ':memory:' && mode.toLowerCase() !== 'wal') {
      throw new EnvironmentError(`database file ${file} could not be switched to WAL mode (it is in ${mode} mode)`, {
        next: 'Put the database on a local filesystem (WAL does not work on network filesystems), or use another file with --db.',
      });
    }
    db.pragma(`synchronous = ${options.synchronous ?? 'NORMAL'}`);
    // No memory map (SQLite's default, stated): pages read through a map count in the daemon's RSS, and the
    // start-up retention pass alone maps the whole sessions table (25 MiB at 100k sessions, 120 MiB after a
    // minute of session load). With read() the OS page cache holds them outside the process; session turns
    // at 50 connections measured within noise of the mapped file side by side (#21, docs/performance.md).
    db.pragma('mmap_size = 0');
    // Checkpoints run on a timer (see maintenance.ts), never inside a request's commit.
    db.pragma('wal_autocheckpoint = 0');
    // After a checkpoint lets the WAL restart, trim a file that a burst grew large.
    db.pragma('journal_size_limit = 134217728');
    migrate(db, file);
    return db;
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing; the first error is the one to report
    }
    throw explainOpenError(err, file);
  } finally {
    process.umask(umask);
  }
}
