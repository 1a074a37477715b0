import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EnvironmentError, ConfigError } from '../../src/core/errors.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { openStore } from '../../src/store/store.js';

function tempFile(name = 'cs-llm.db'): string {
  return join(mkdtempSync(join(tmpdir(), 'cs-llm-db-')), name);
}

test('a new database file gets the current schema version and its directories are created', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-db-')), 'deeper', 'state', 'cs-llm.db');
  const version = () => {
    const db = new Database(file, { readonly: true });
    try {
      return db.pragma('user_version', { simple: true });
    } finally {
      db.close();
    }
  };
  await (await openStore({ file })).close();
  assert.equal(version(), SCHEMA_VERSION);
  // reopening applies nothing twice
  await (await openStore({ file })).close();
  assert.equal(version(), SCHEMA_VERSION);
});

test('a file that is not a database is reported with its path and left untouched', async () => {
  const file = tempFile();
  const garbage = 'this is not sqlite '.repeat(300);
  writeFileSync(file, garbage);
  await assert.rejects(
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

test('a database locked by another process is a clear error, not a hang or a new file', async () => {
  const file = tempFile();
  await (await openStore({ file })).close();
  const holder = new Database(file);
  holder.pragma('locking_mode = EXCLUSIVE');
  holder.exec('BEGIN EXCLUSIVE');
  try {
    await assert.rejects(
      () => openStore({ file, busyTimeoutMs: 50 }),
      (err: unknown) => err instanceof EnvironmentError && /locked by another process/.test(err.message) && err.message.includes(file),
    );
  } finally {
    holder.exec('COMMIT');
    holder.close();
  }
});

test('a database from a newer cs-llm is refused instead of being changed', async () => {
  const file = tempFile();
  const db = new Database(file);
  db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
  db.close();
  await assert.rejects(
    () => openStore({ file }),
    (err: unknown) => err instanceof ConfigError && /newer than this cs-llm/.test(err.message),
  );
});

test('a new database, its WAL and its shared-memory file are readable by their owner only, and a directory made for them is 0700', async () => {
  // The usual umask (022) would give 0644 files and a 0755 directory: other local users could read conversations.
  const previous = process.umask(0o022);
  try {
    const dir = join(mkdtempSync(join(tmpdir(), 'cs-llm-db-')), 'state');
    const file = join(dir, 'cs-llm.db');
    const store = await openStore({ file });
    await store.sessions.appendTurn('default', 's', 'default', [{ role: 'user', content: 'hello' }], 60_000, Date.now());
    const mode = (path: string) => (statSync(path).mode & 0o777).toString(8);
    assert.equal(mode(dir), '700');
    for (const path of [file, `${file}-wal`, `${file}-shm`]) assert.equal(mode(path), '600', path);
    await store.close();
  } finally {
    process.umask(previous);
  }
});
