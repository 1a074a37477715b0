import { statSync } from 'node:fs';

// Who may read the store's files. Conversations are in the database, its WAL and shared-memory files;
// the state directory also holds keys and logs. New ones are created private (database.ts,
// ensurePrivateDir); ones made by an older cs-llm or by hand may not be, and are reported, never changed.

export interface LooseMode {
  path: string;
  /** The permission bits found. */
  mode: number;
  /** What they should be: 0o700 for the directory, 0o600 for a file. */
  want: number;
}

/** The state directory and the database files that exist and give group or others any access. */
export function looseStoreModes(stateDir: string, dbFile: string): LooseMode[] {
  const loose: LooseMode[] = [];
  const check = (path: string, want: number) => {
    let mode: number;
    try {
      mode = statSync(path).mode & 0o777;
    } catch {
      return; // not there: nothing to protect yet
    }
    if ((mode & 0o077) !== 0) loose.push({ path, mode, want });
  };
  check(stateDir, 0o700);
  for (const suffix of ['', '-wal', '-shm']) check(`${dbFile}${suffix}`, 0o600);
  return loose;
}
