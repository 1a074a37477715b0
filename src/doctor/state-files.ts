// The state-files check: stored conversations must not be readable by other local users.

import { looseStoreModes } from '../store/file-modes.js';
import type { Check } from './check.js';

/** Warns about the state directory or a database file (db, -wal, -shm) that group or others can access. */
export function checkStateFiles(stateDir: string, dbFile: string): Check {
  const loose = looseStoreModes(stateDir, dbFile);
  const octal = (mode: number) => `0${mode.toString(8).padStart(3, '0')}`;
  if (loose.length === 0) {
    return {
      name: 'state-files',
      status: 'ok',
      detail: `${stateDir} and the database files are readable by this user only`,
      fix: null,
      neededByUp: false,
    };
  }
  const dirs = loose.filter((l) => l.want === 0o700).map((l) => l.path);
  const files = loose.filter((l) => l.want === 0o600).map((l) => l.path);
  return {
    name: 'state-files',
    status: 'warn',
    detail: `other local users can read stored conversations: ${loose.map((l) => `${l.path} is ${octal(l.mode)}`).join(', ')}`,
    fix: [dirs.length > 0 ? `chmod 700 ${dirs.join(' ')}` : null, files.length > 0 ? `chmod 600 ${files.join(' ')}` : null]
      .filter((c) => c !== null)
      .join(' && '),
    neededByUp: false,
  };
}
