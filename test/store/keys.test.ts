import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqliteStore } from '../../src/store/sqlite-store.js';

/** The store, and its connection for looking at the rows. */
function tempStore(t: { after(fn: () => Promise<void>): void }) {
  const opened = openSqliteStore({ file: join(mkdtempSync(join(tmpdir(), 'cs-llm-keys-')), 'cs-llm.db') });
  t.after(() => opened.store.close());
  return opened;
}

test('a created key verifies, and only its hash and a short prefix are stored', async (t) => {
  const { store, db } = tempStore(t);
  assert.equal(await store.keys.hasActiveKeys(), false);
  const { key, info } = await store.keys.create('frontend', 1000);
  assert.match(key, /^csk_[A-Za-z0-9_-]{40,}$/);
  assert.equal(info.prefix, key.slice(0, 12));
  assert.equal(await store.keys.hasActiveKeys(), true);
  assert.equal(await store.keys.verify(key), true);
  assert.equal(await store.keys.verify(`${key}x`), false);
  assert.equal(await store.keys.verify(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A')), false);
  assert.equal(await store.keys.verify('sk-something-else'), false);
  const dump = JSON.stringify(db.prepare('SELECT * FROM api_keys').all());
  assert.equal(dump.includes(key), false);
  assert.deepEqual(
    (await store.keys.list()).map((k) => [k.name, k.prefix, k.revokedAt]),
    [['frontend', info.prefix, null]],
  );
});

test('a revoked key stops verifying; revoking by prefix or id both work', async (t) => {
  const { store } = tempStore(t);
  const a = await store.keys.create('a', 1);
  const b = await store.keys.create('b', 2);
  assert.equal((await store.keys.revoke(a.info.prefix, 10))?.id, a.info.id);
  assert.equal(await store.keys.verify(a.key), false);
  assert.equal(await store.keys.verify(b.key), true);
  assert.equal((await store.keys.revoke(b.info.id, 11))?.name, 'b');
  assert.equal(await store.keys.hasActiveKeys(), false);
  assert.equal(await store.keys.revoke('csk_nothing', 12), null);
  assert.equal(
    (await store.keys.list()).every((k) => k.revokedAt !== null),
    true,
  );
});
