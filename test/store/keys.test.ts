import assert from 'node:assert/strict';
import { storeTest } from '../helpers/stores.js';

storeTest('a created key verifies, and only its hash and a short prefix are stored', async (t, backend) => {
  const store = await backend.open();
  assert.equal(await store.keys.hasActiveKeys(), false);
  const { key, info } = await store.keys.create('frontend', 1000);
  assert.match(key, /^csk_[A-Za-z0-9_-]{40,}$/);
  assert.equal(info.prefix, key.slice(0, 12));
  assert.equal(await store.keys.hasActiveKeys(), true);
  assert.notEqual(await store.keys.verify(key), null);
  assert.equal(await store.keys.verify(`${key}x`), null);
  assert.equal(await store.keys.verify(key.slice(0, -1) + (key.endsWith('A') ? 'B' : 'A')), null);
  assert.equal(await store.keys.verify('sk-something-else'), null);
  const dump = JSON.stringify(await backend.rows('SELECT * FROM api_keys'));
  assert.equal(dump.includes(key), false);
  assert.deepEqual(
    (await store.keys.list()).map((k) => [k.name, k.prefix, k.revokedAt]),
    [['frontend', info.prefix, null]],
  );
});

storeTest('a revoked key stops verifying; revoking by prefix or id both work', async (t, backend) => {
  const store = await backend.open();
  const a = await store.keys.create('a', 1);
  const b = await store.keys.create('b', 2);
  assert.equal((await store.keys.revoke(a.info.prefix, 10))?.id, a.info.id);
  assert.equal(await store.keys.verify(a.key), null);
  assert.notEqual(await store.keys.verify(b.key), null);
  assert.equal((await store.keys.revoke(b.info.id, 11))?.name, 'b');
  assert.equal(await store.keys.hasActiveKeys(), false);
  assert.equal(await store.keys.revoke('csk_nothing', 12), null);
  assert.equal(
    (await store.keys.list()).every((k) => k.revokedAt !== null),
    true,
  );
});

storeTest("a key carries its tenant, profiles and admin flag, and verify answers them with the key's row", async (t, backend) => {
  const store = await backend.open();
  const plain = await store.keys.create('web chat', 1);
  assert.deepEqual([plain.info.tenant, plain.info.profiles, plain.info.admin], ['default', null, false]);
  const scoped = await store.keys.create('shop app', 2, { tenant: 'shop-b', profiles: ['sales', 'support', 'sales'], admin: false });
  const ops = await store.keys.create('operator', 3, { admin: true });
  const seen = await store.keys.verify(scoped.key);
  assert.deepEqual([seen?.tenant, seen?.profiles, seen?.admin, seen?.prefix], ['shop-b', ['sales', 'support'], false, scoped.info.prefix]);
  assert.equal((await store.keys.verify(ops.key))?.admin, true);
  assert.deepEqual(
    (await store.keys.list()).map((k) => [k.name, k.tenant, k.profiles, k.admin]),
    [
      ['web chat', 'default', null, false],
      ['shop app', 'shop-b', ['sales', 'support'], false],
      ['operator', 'default', null, true],
    ],
  );
  await assert.rejects(store.keys.create('bad', 4, { tenant: 'shop/b' }), /tenant "shop\/b" must be/);
});
