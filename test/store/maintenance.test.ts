import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/store.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';

test('checkpoints copy the WAL into the database file from a worker thread, on a timer', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-maint-')), 'cs-llm.db');
  const store = await openStore({ file });
  t.after(() => store.close());
  const before = statSync(file).size;
  for (let i = 0; i < 200; i++)
    await store.sessions.appendTurn('default', `s${i}`, 'default', [{ role: 'user', content: 'x'.repeat(500) }], 3_600_000, Date.now());
  assert.equal(statSync(file).size, before, 'automatic checkpoints are off: the turns are only in the WAL');
  const errors: unknown[] = [];
  const stop = store.maintenance.start({ checkpointIntervalMs: 20, onError: (_what, err) => errors.push(err) });
  while (statSync(file).size === before) await new Promise((r) => setTimeout(r, 20));
  await stop();
  assert.deepEqual(errors, []);
  assert.ok(statSync(file).size > 100_000);
});

test('the checkpoint thread runs only while the database is written: it ends when quiet, starts at the next write', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-maint-')), 'cs-llm.db');
  const store = await openStore({ file });
  t.after(() => store.close());
  const threads: boolean[] = [];
  const until = async (ok: () => boolean) => {
    while (!ok()) await new Promise((r) => setTimeout(r, 20));
  };
  const errors: unknown[] = [];
  const stop = store.maintenance.start({
    checkpointIntervalMs: 20,
    onError: (_what, err) => errors.push(err),
    onCheckpointThread: (running) => threads.push(running),
  });
  t.after(stop);
  // Started at once (the migrations' pages), ended after 10 quiet intervals.
  await until(() => threads.length === 2);
  assert.deepEqual(threads, [true, false]);
  const before = statSync(file).size;
  for (let i = 0; i < 200; i++)
    await store.sessions.appendTurn('default', `s${i}`, 'default', [{ role: 'user', content: 'x'.repeat(500) }], 3_600_000, Date.now());
  // The writes start it again, it copies them into the database file and ends once more.
  await until(() => threads.length === 4);
  assert.deepEqual(threads, [true, false, true, false]);
  assert.ok(statSync(file).size > before + 100_000, 'the turns were copied into the database file');
  assert.deepEqual(errors, []);
});

test('the sweeper deletes expired sessions on its timer', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-maint-')), 'cs-llm.db');
  const store = await openStore({ file });
  t.after(() => store.close());
  for (let i = 0; i < 450; i++) await store.sessions.appendTurn('default', `old${i}`, 'default', [{ role: 'user', content: 'x' }], 10, 0);
  await store.sessions.appendTurn('default', 'live', 'default', [{ role: 'user', content: 'x' }], 3_600_000, Date.now());
  let swept = 0;
  const stop = store.maintenance.start({ sweepIntervalMs: 20, onSweep: (n) => (swept += n) });
  while (swept < 450) await new Promise((r) => setTimeout(r, 20));
  await stop();
  assert.equal(swept, 450);
  assert.deepEqual(
    (await store.sessions.list({ tenant: null, now: Date.now(), limit: 10 })).sessions.map((s) => s.id),
    ['live'],
  );
});

test('under a steady write load the WAL still rewinds instead of growing without bound', async (t) => {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-maint-')), 'cs-llm.db');
  const { store, db } = openSqliteStore({ file });
  t.after(() => store.close());
  let rewinds = 0;
  const stop = store.maintenance.start({
    checkpointIntervalMs: 20,
    walRewindFrames: 200,
    onRewind: () => rewinds++,
  });
  let turns = 0;
  // Keep writing (yielding between turns, as a busy daemon does) until a rewind happened and a few more turns followed.
  while (rewinds === 0 || turns % 50 !== 0) {
    await store.sessions.appendTurn(
      'default',
      `s${turns % 20}`,
      'default',
      [{ role: 'user', content: 'x'.repeat(2000) }],
      3_600_000,
      Date.now(),
    );
    turns++;
    await new Promise((r) => setImmediate(r));
  }
  await stop();
  const [{ log }] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
  // Each turn writes at least one page: far more pages were written than the WAL now holds.
  assert.ok(log < turns, `WAL holds ${log} pages after ${turns} turns`);
});
