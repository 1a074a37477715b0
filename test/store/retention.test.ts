import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../src/core/config.js';
import { protectionFor } from '../../src/store/protection.js';
import { openStore, type Store } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { foundIn } from '../helpers/db-files.js';
import { storeTest } from '../helpers/stores.js';

const HOUR = 3_600_000;

async function tempStore(
  t: { after(fn: () => Promise<void>): void },
  retentionMs?: number,
): Promise<{ store: Store; file: string; home: string }> {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-erase-'));
  const file = join(home, 'cs-llm.db');
  const store = await openStore({ file, ...(retentionMs ? { protection: { retentionMs: () => retentionMs } } : {}) });
  t.after(() => store.close());
  return { store, file, home };
}

/**
 * Sessions whose messages share pages with each other (rows interleave by insertion order), short ones and
 * ones long enough to spill into overflow pages, each message carrying its session's marker.
 */
async function fill(store: Store, ids: string[], now: number, ttlMs = HOUR): Promise<void> {
  for (let turn = 0; turn < 3; turn++) {
    for (const id of ids) {
      const marker = `MARKER-${id}-`;
      const long = turn === 1 ? ` ${marker}tail`.padStart(6000, 'lorem ipsum ') : '';
      await store.sessions.appendTurn(
        'default',
        id,
        'default',
        [
          { role: 'user', content: `turn ${turn}: ${marker}user${long}` },
          { role: 'assistant', content: `reply ${turn}: ${marker}assistant` },
        ],
        ttlMs,
        now,
      );
    }
  }
}

test('an erased session leaves no trace of its text in the database file or the WAL', async (t) => {
  const { store, file } = await tempStore(t);
  const ids = Array.from({ length: 60 }, (_, i) => `s${i}`);
  await fill(store, ids, Date.now());
  // Some of it checkpointed into the database file, some still in the WAL: both places must be cleaned.
  const other = new Database(file);
  other.pragma('wal_checkpoint(PASSIVE)');
  other.close();
  await fill(store, ['late1', 'late2'], Date.now());
  assert.ok(foundIn(file, 'MARKER-s7-').includes('db'), 'the marker is found by this search before the erasure');
  assert.ok(foundIn(file, 'MARKER-late1-').includes('wal'));

  for (const id of ['s7', 's31', 'late1']) assert.equal(await store.sessions.delete('default', id), true);
  assert.equal(await store.sessions.scrubbed(10_000), true);

  for (const id of ['s7', 's31', 'late1']) assert.deepEqual(foundIn(file, `MARKER-${id}-`), [], `${id} is gone from both files`);
  assert.deepEqual(foundIn(file, 'MARKER-s8-'), ['db'], 'other sessions are kept');
  assert.equal((await store.sessions.get('default', 's8', Date.now()))?.messages.length, 6);
});

test('while another connection holds an old snapshot the scrub waits and retries, and finishes once it is released', async (t) => {
  const { store, file } = await tempStore(t);
  await fill(store, ['busy', 'other'], Date.now());
  const reader = new Database(file);
  t.after(() => reader.close());
  reader.exec('BEGIN');
  reader.prepare('SELECT COUNT(*) FROM messages').get();

  assert.equal(await store.sessions.delete('default', 'busy'), true);
  assert.equal(await store.sessions.scrubbed(300), false, 'not done while the reader may still see the old pages');
  assert.equal(await store.sessions.get('default', 'busy', Date.now()), null, 'deleted for every query at once');
  reader.exec('COMMIT');
  assert.equal(await store.sessions.scrubbed(10_000), true);
  assert.deepEqual(foundIn(file, 'MARKER-busy-'), []);
});

storeTest(
  'the retention sweeper deletes sessions past their profile retention and scrubs their text from the files',
  async (t, backend) => {
    const retentionMs = 60_000;
    const store = await backend.open({ protection: { retentionMs: () => retentionMs } });
    const start = Date.now();
    // Inside their one-hour TTL, but created 10 minutes ago: retention (1 minute) caps their life.
    await fill(store, ['old1', 'old2'], start - 10 * 60_000);
    assert.equal((await store.sessions.get('default', 'old1', start - 10 * 60_000 + 1000))?.id, 'old1');
    assert.equal(await store.sessions.get('default', 'old1', start), null, 'past retention a session reads as absent at once');
    await fill(store, ['fresh'], start);
    assert.notDeepEqual(await backend.textFound('MARKER-old1-'), [], 'the search finds the marker before the sweep');

    let swept = 0;
    const stop = store.maintenance.start({
      sweepIntervalMs: 20,
      checkpointIntervalMs: 50,
      onSweep: (n) => (swept += n),
    });
    t.after(stop);
    while (swept < 2) await new Promise((r) => setTimeout(r, 20));
    assert.equal(await store.sessions.scrubbed(10_000), true);
    await stop();

    assert.equal(swept, 2);
    // On PostgreSQL: the sweep's VACUUM left no row version, live or dead, holding their text.
    for (const id of ['old1', 'old2']) assert.deepEqual(await backend.textFound(`MARKER-${id}-`), []);
    assert.deepEqual(
      (await store.sessions.list({ tenant: null, now: Date.now(), limit: 10 })).sessions.map((s) => s.id),
      ['fresh'],
    );
    assert.notDeepEqual(await backend.textFound('MARKER-fresh-'), []);
  },
);

test('the start-up retention pass reads no session when no profile has a retention, and goes through them when one has', async (t) => {
  const { store: seed, file, home } = await tempStore(t);
  await fill(seed, ['a', 'b', 'c'], Date.now());
  await seed.close();
  const none = loadConfig({ env: { CS_LLM_HOME: home }, flags: {} }).config;
  const brief = loadConfig({ env: { CS_LLM_HOME: home }, flags: { profiles: { brief: { retentionSeconds: 3600 } } } }).config;
  assert.equal(protectionFor(none).anyRetention, false);
  assert.equal(protectionFor(brief).anyRetention, true);
  // One session a step: with a retention the pass goes on after the first; without one it is done at once.
  for (const [config, next] of [
    [none, null],
    [brief, { tenant: 'default', id: 'a' }],
  ] as const) {
    const store = await openStore({ file, protection: protectionFor(config) });
    assert.deepEqual(await store.sessions.capRetention(null, 1), { next, capped: 0 });
    await store.close();
  }
});

test('a retention set after sessions were stored applies to them when the daemon starts its upkeep', async (t) => {
  const { store: before, file } = await tempStore(t);
  const start = Date.now();
  // Stored under a 30-day TTL and no retention; one of them two days old.
  await fill(before, ['two-days-old'], start - 2 * 24 * HOUR, 30 * 24 * HOUR);
  await fill(before, ['today'], start, 30 * 24 * HOUR);
  await before.close();

  const store = await openStore({ file, protection: { retentionMs: () => 24 * HOUR } });
  t.after(() => store.close());
  let swept = 0;
  const stop = store.maintenance.start({ sweepIntervalMs: 60_000, onSweep: (n) => (swept += n) });
  t.after(stop);
  while (swept < 1) await new Promise((r) => setTimeout(r, 20));
  assert.equal(await store.sessions.scrubbed(10_000), true);
  await stop();
  assert.deepEqual(
    (await store.sessions.list({ tenant: null, now: Date.now(), limit: 10 })).sessions.map((s) => s.id),
    ['today'],
  );
  assert.deepEqual(foundIn(file, 'MARKER-two-days-old-'), []);
});

test('cs-llm sessions prune --older-than and sessions delete leave no trace of the removed text in the files', async (t) => {
  const { store, file, home } = await tempStore(t);
  await fill(store, ['stale', 'recent', 'doomed'], Date.now() - 40 * 24 * HOUR, 365 * 24 * HOUR);
  await fill(store, ['recent', 'doomed'], Date.now(), 365 * 24 * HOUR);
  store.close();
  const env = { CS_LLM_HOME: home };

  const prune = await runCli(['sessions', 'prune', '--older-than', '30d', '--db', file], { env });
  assert.equal(prune.exitCode, 0, String(prune.stderr));
  assert.match(String(prune.stdout), /and 1 not updated for 30d/);
  assert.deepEqual(foundIn(file, 'MARKER-stale-'), []);

  const del = await runCli(['sessions', 'delete', 'doomed', '--db', file], { env });
  assert.equal(del.exitCode, 0, String(del.stderr));
  assert.match(String(del.stdout), /deleted session doomed; its text is gone/);
  assert.deepEqual(foundIn(file, 'MARKER-doomed-'), []);
  assert.deepEqual(foundIn(file, 'MARKER-recent-'), ['db']);
});
