import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/store.js';

function tempStore(t: { after(fn: () => void): void }) {
  const store = openStore({ file: join(mkdtempSync(join(tmpdir(), 'cs-llm-keys-')), 'cs-llm.db') });
  t.after(() => store.close());
  return store;
}

test('a created key verifies, and only its hash and a short prefix are stored', (t) => {
  const store = tempStore(t);
  assert.equal(store.keys.hasActiveKeys(), false);
  const { key, info } = store.keys.create('frontend', 1000);
  assert.match(key, /^csk_[A-Za-z0-9_-]{40,}$/);
  assert.equal(info.prefix, key.slice(0, 12));
  assert.equal(store.keys.hasActiveKeys(), true);
  assert.equal(store.keys.verify(key), true);
  assert.equal(store.keys.verify(`${key}x`), false);
  assert.equal(store.keys.verify(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A')), false);
  assert.equal(store.keys.verify('sk-something-else'), false);
  const dump = JSON.stringify(store.db.prepare('SELECT * FROM api_keys').all());
  assert.equal(dump.includes(key), false);
  assert.deepEqual(
    store.keys.list().map((k) => [k.name, k.prefix, k.revokedAt]),
    [['frontend', info.prefix, null]],
  );
});

test('a revoked key stops verifying; revoking by prefix or id both work', (t) => {
  const store = tempStore(t);
  const a = store.keys.create('a', 1);
  const b = store.keys.create('b', 2);
  assert.equal(store.keys.revoke(a.info.prefix, 10)?.id, a.info.id);
  assert.equal(store.keys.verify(a.key), false);
  assert.equal(store.keys.verify(b.key), true);
  assert.equal(store.keys.revoke(b.info.id, 11)?.name, 'b');
  assert.equal(store.keys.hasActiveKeys(), false);
  assert.equal(store.keys.revoke('csk_nothing', 12), null);
  assert.equal(
    store.keys.list().every((k) => k.revokedAt !== null),
    true,
  );
});
