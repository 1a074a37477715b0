import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { createWindowCache } from '../../src/store/window-cache.js';
import type { RawMessageRow } from '../../src/store/session-rows.js';

const HOUR = 3_600_000;

/** A stored row of `turn` whose content is `chars` characters long (the cache counts text, not meaning). */
const row = (turn: number, chars: number): RawMessageRow => [turn, 'user', 'x'.repeat(chars), 0, null, null, null, 0, null];

test('the kept windows stay within their byte budget, least recently used dropped first, and a window over it is not kept', async (t) => {
  const opened = openSqliteStore({ file: join(mkdtempSync(join(tmpdir(), 'cs-llm-windows-')), 'cs-llm.db') });
  t.after(() => opened.store.close());
  for (const id of ['a', 'b', 'c', 'd'])
    await opened.store.sessions.appendTurn('default', id, 'default', [{ role: 'user', content: id }], HOUR, 1);
  // About 1,100 bytes a window (its text and each row's overhead), 2,500 in all: two windows fit, not three.
  const cache = createWindowCache(opened.db, { windows: 100, bytes: 2500 });
  const kept = (id: string) => cache.rows('default', id, 10, 2) !== null;
  cache.loaded('default', 'a', 10, [row(1, 1000)], 1);
  cache.loaded('default', 'b', 10, [row(1, 1000)], 1);
  assert.deepEqual([kept('a'), kept('b')], [true, true]);
  // 'a' was read last, so 'b' is the least recently used when 'c' comes.
  assert.equal(kept('a'), true);
  cache.loaded('default', 'c', 10, [row(1, 1000)], 1);
  assert.deepEqual([kept('a'), kept('b'), kept('c')], [true, false, true]);

  // A turn that grows a window past what is left drops the others it needs room from.
  cache.appended('default', 'c', 2, [row(2, 1200)]);
  assert.deepEqual([kept('a'), kept('c')], [false, false], "'c' is at turn 2 in memory, 1 in the database: not served");
  assert.equal(cache.rows('default', 'c', 10, 2), null);

  // A window larger than the whole budget is not kept, and drops nothing.
  cache.loaded('default', 'd', 10, [row(1, 1000)], 1);
  cache.loaded('default', 'a', 10, [row(1, 5000)], 1);
  assert.deepEqual([kept('a'), kept('d')], [false, true]);
});

test('the kept windows stay within their count', async (t) => {
  const opened = openSqliteStore({ file: join(mkdtempSync(join(tmpdir(), 'cs-llm-windows-')), 'cs-llm.db') });
  t.after(() => opened.store.close());
  for (const id of ['a', 'b', 'c'])
    await opened.store.sessions.appendTurn('default', id, 'default', [{ role: 'user', content: id }], HOUR, 1);
  const cache = createWindowCache(opened.db, { windows: 2, bytes: 1 << 20 });
  for (const id of ['a', 'b', 'c']) cache.loaded('default', id, 10, [row(1, 10)], 1);
  assert.deepEqual(
    ['a', 'b', 'c'].map((id) => cache.rows('default', id, 10, 2) !== null),
    [false, true, true],
  );
});
