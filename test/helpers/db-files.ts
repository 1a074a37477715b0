import { existsSync, readFileSync } from 'node:fs';

/** The raw bytes of a SQLite database and its WAL (the WAL may be absent or empty). */
export function rawBytes(file: string): { db: Buffer; wal: Buffer } {
  return { db: readFileSync(file), wal: existsSync(`${file}-wal`) ? readFileSync(`${file}-wal`) : Buffer.alloc(0) };
}

/** Where a text appears in the files, e.g. ['db', 'wal']; [] when nowhere. */
export function foundIn(file: string, text: string): string[] {
  const { db, wal } = rawBytes(file);
  const needle = Buffer.from(text, 'utf8');
  return [...(db.includes(needle) ? ['db'] : []), ...(wal.includes(needle) ? ['wal'] : [])];
}
