import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { EnvironmentError } from '../../src/core/errors.js';
import { openStore } from '../../src/store/store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';

const require = createRequire(import.meta.url);
const HOUR = 3_600_000;
const user = (content: string) => [{ role: 'user', content }];

test("writes that meet another connection's lock wait off the event loop, then commit in the order they were made", async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-lock-')), 'cs-llm.db');
  const store = await openStore({ file });
  t.after(() => store.close());
  await store.sessions.appendTurn('default', 's', 'default', user('zero'), HOUR, 1);
  const other = new Database(file);
  t.after(() => other.close());
  other.exec('BEGIN IMMEDIATE');

  const committed: string[] = [];
  const writes = ['one', 'two', 'three'].map((text, i) =>
    store.sessions.appendTurn('default', 's', 'default', user(text), HOUR, 2 + i).then(() => committed.push(text)),
  );
  // Timers run meanwhile (nothing waits on the event loop), reads go on, and nothing is committed yet.
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.deepEqual(committed, []);
  assert.deepEqual(
    (await store.sessions.loadWindow('default', 's', 10, 10)).map((m) => m.message.content),
    ['zero'],
  );
  other.exec('COMMIT');
  await Promise.all(writes);
  assert.deepEqual(committed, ['one', 'two', 'three']);
  assert.deepEqual(
    (await store.sessions.loadWindow('default', 's', 10, 10)).map((m) => m.message.content),
    ['zero', 'one', 'two', 'three'],
  );
});

test('a write that finds the database locked for longer than store.busyTimeoutMs fails naming the file and what to do', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-lock-')), 'cs-llm.db');
  const store = await openStore({ file, busyTimeoutMs: 300 });
  t.after(() => store.close());
  const other = new Database(file);
  t.after(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  await assert.rejects(
    () => store.sessions.appendTurn('default', 's', 'default', user('lost'), HOUR, 1),
    (err: unknown) =>
      err instanceof EnvironmentError &&
      err.message === `database file ${file} stayed locked by another process for 300 ms` &&
      /store\.busyTimeoutMs/.test(err.next ?? ''),
  );
  other.exec('COMMIT');
  await store.sessions.appendTurn('default', 's', 'default', user('kept'), HOUR, 2);
  assert.deepEqual(
    (await store.sessions.loadWindow('default', 's', 10, 10)).map((m) => m.message.content),
    ['kept'],
  );
});

test('the connection never sleeps inside SQLite for a lock (busy_timeout 0): a wait is a timer, so the event loop runs meanwhile', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-lock-')), 'cs-llm.db');
  const { store, db } = openSqliteStore({ file, busyTimeoutMs: 5000 });
  t.after(() => store.close());
  assert.equal(db.pragma('busy_timeout', { simple: true }), 0);
  const other = new Database(file);
  t.after(() => other.close());
  other.exec('BEGIN IMMEDIATE');
  let settled = false;
  const write = store.sessions.appendTurn('default', 's', 'default', user('waits'), HOUR, 1).then(() => (settled = true));
  // A timer runs while the write waits, and the figures say one call waits.
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(settled, false);
  assert.deepEqual(await store.stats.lockWaits(), { waiting: 1, waits: 1, timeouts: 0 });
  other.exec('COMMIT');
  await write;
  assert.deepEqual(await store.stats.lockWaits(), { waiting: 0, waits: 1, timeouts: 0 });
});

/** Another process that takes the write lock, says "locked", and lets it go after holdMs. */
function holdLock(file: string, holdMs: number): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const D = require(process.argv[1]); const db = new D(process.argv[2]); db.exec('BEGIN IMMEDIATE');
       process.stdout.write('locked\\n'); setTimeout(() => { db.exec('COMMIT'); db.close(); }, Number(process.argv[3]));`,
      require.resolve('better-sqlite3'),
      file,
      String(holdMs),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    child.stdout!.once('data', () => resolve(child));
    child.once('error', reject);
  });
}

test("the audit writer, made at start and closed at stop (nothing served then), waits for another process's lock instead of failing", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-lock-'));
  const file = join(dir, 'cs-llm.db');
  const store = await openStore({ file });
  t.after(() => store.close());
  const ring = await store.audit.keyring(join(dir, 'audit.key'));
  await holdLock(file, 300);
  const writer = store.audit.writer(ring, { flushMs: 60_000 });
  writer.append({
    at: Date.now(),
    keyId: null,
    method: 'GET',
    route: '/healthz',
    sessionId: null,
    upstream: null,
    status: 200,
    outcome: 'ok',
    errorCode: null,
    promptTokens: null,
    completionTokens: null,
    latencyMs: 1,
    upstreamMs: 0,
  });
  await holdLock(file, 300);
  writer.close();
  const records = [];
  for await (const r of store.audit.since(0)) records.push(r.route);
  assert.deepEqual(records, ['/healthz']);
});
