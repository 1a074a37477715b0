import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EnvironmentError, ConfigError } from '../../src/core/errors.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { openStore } from '../../src/store/store.js';

function tempFile(name = 'cs-llm.db'): string {
  return join(mkdtempSync(join(tmpdir(), 'cs-llm-db-')), name);
}

test('a new database file gets the current schema version and its directories are created', () => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-db-')), 'deeper', 'state', 'cs-llm.db');
  const store = openStore({ file });
  assert.equal(store.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  store.close();
  // reopening applies nothing twice
  const again = openStore({ file });
  assert.equal(again.db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  again.close();
});

test('a file that is not a database is reported with its path and left untouched', () => {
  const file = tempFile();
  const garbage = 'this is not sqlite '.repeat(300);
  writeFileSync(file, garbage);
  assert.throws(
    () => openStore({ file }),
    (err: unknown) => {
      assert.ok(err instanceof EnvironmentError);
      assert.match(err.message, new RegExp(`${file}.*(damaged|not a SQLite database)`));
      assert.match(err.next ?? '', /move the file aside/);
      return true;
    },
  );
  assert.equal(readFileSync(file, 'utf8'), garbage);
});

test('a database locked by another process is a clear error, not a hang or a new file', () => {
  const file = tempFile();
  openStore({ file }).close();
  const holder = new Database(file);
  holder.pragma('locking_mode = EXCLUSIVE');
  holder.exec('BEGIN EXCLUSIVE');
  try {
    assert.throws(
      () => openStore({ file, busyTimeoutMs: 50 }),
      (err: unknown) => err instanceof EnvironmentError && /locked by another process/.test(err.message) && err.message.includes(file),
    );
  } finally {
    holder.exec('COMMIT');
    holder.close();
  }
});

test('a database from a newer cs-llm is refused instead of being changed', () => {
  const file = tempFile();
  const db = new Database(file);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  assert.throws(
    () => openStore({ file }),
    (err: unknown) => err instanceof ConfigError && /newer than this cs-llm/.test(err.message),
  );
});
