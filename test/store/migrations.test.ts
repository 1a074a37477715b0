import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../src/core/config.js';
import { readAuditKeyring } from '../../src/store/audit-key.js';
import { SCHEMA_VERSION } from '../../src/store/migrations.js';
import { bucketOf } from '../../src/store/expiry-bucket.js';
import { protectionFor } from '../../src/store/protection.js';
import { openStore } from '../../src/store/store.js';
import { ROOT } from '../helpers/cli.js';
import { startHarness, text } from '../daemon/harness.js';

// test/fixtures/schema6: a database written by the release before tenants (README there says how).
const FIXTURE = join(ROOT, 'test', 'fixtures', 'schema6');
const API_KEY = readFileSync(join(FIXTURE, 'api.key'), 'utf8').trim();

/** A copy of the fixture (opening it migrates it) with the config that reads it: its store and audit keys. */
function copyFixture(): { dir: string; file: string; config: Record<string, unknown> } {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-schema6-'));
  // 0600 as cs-llm made them (git keeps no file modes, and key files readable by others are refused).
  for (const name of ['cs-llm.db', 'audit.key', 'store.key']) {
    copyFileSync(join(FIXTURE, name), join(dir, name));
    chmodSync(join(dir, name), 0o600);
  }
  return {
    dir,
    file: join(dir, 'cs-llm.db'),
    config: { store: { encryption: { keyFile: join(dir, 'store.key') }, auditKeyFile: join(dir, 'audit.key') } },
  };
}

/** When the fixture's turns were made: its sessions are live just after. */
function fixtureTime(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare('SELECT MAX(updated_at) AS t FROM sessions').get() as { t: number }).t + 1000;
  } finally {
    db.close();
  }
}

test('a database of the release before tenants opens with its sessions, keys and audit log in tenant default, nothing lost', async (t) => {
  const { dir, file, config: input } = copyFixture();
  const now = fixtureTime(file);
  const { config } = loadConfig({ env: { CS_LLM_HOME: dir }, flags: input });
  const store = await openStore({ file, protection: protectionFor(config) });
  t.after(() => store.close());
  const db = new Database(file, { readonly: true });
  t.after(() => db.close());
  assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
  // Schema 9: the expiry indexes' bucket, the minute of each stored expiry (expiry-bucket.ts).
  for (const row of db.prepare('SELECT expires_at, expiry_bucket FROM sessions').all() as Array<{
    expires_at: number;
    expiry_bucket: number;
  }>)
    assert.equal(row.expiry_bucket, bucketOf(row.expires_at));

  const page = await store.sessions.list({ tenant: null, now, limit: 10 });
  assert.deepEqual(
    page.sessions.map((s) => [s.tenant, s.id, s.turns]),
    [
      ['default', 'customer-9', 1],
      ['default', 'customer-4711', 2],
    ],
  );
  assert.deepEqual(
    (await store.sessions.list({ tenant: 'default', now, limit: 10 })).sessions.map((s) => s.id),
    ['customer-9', 'customer-4711'],
  );
  // Encrypted before: still opens (the default tenant's rows keep the context they were encrypted with).
  const exported = (await store.sessions.export('default', 'customer-4711'))!;
  assert.equal(exported.messages.length, 4);
  assert.equal(exported.messages[0]!.content, 'Where is my order 12345? Call me on [PHONE].');
  assert.equal((await store.sessions.loadWindow('default', 'customer-4711', 10, now)).length, 4);
  assert.equal(await store.sessions.get('other', 'customer-4711', now), null);

  const [key] = await store.keys.list();
  assert.deepEqual([key!.name, key!.tenant, key!.profiles, key!.admin], ['frontend', 'default', null, false]);
  assert.equal((await store.keys.verify(API_KEY))?.tenant, 'default');

  const check = await store.audit.verify(readAuditKeyring(join(dir, 'audit.key')));
  assert.equal(check.ok, true, JSON.stringify(check.broken));
  assert.equal(check.records, 3);
  const records = await store.audit.forSession('default', 'customer-4711');
  assert.deepEqual(
    records.map((r) => [r.seq, r.tenant]),
    [
      [1, null],
      [2, null],
    ],
  );
  assert.deepEqual(await store.audit.forSession('other', 'customer-4711'), []);
});

test('a daemon on a migrated database goes on with the old sessions under their old key; another tenant with the same session id starts its own', async (t) => {
  const { dir, file, config } = copyFixture();
  const now = fixtureTime(file);
  const h = await startHarness(t, {
    config,
    now: () => now,
    beforeStart: (paths) => {
      mkdirSync(dirname(paths.dbFile), { recursive: true, mode: 0o700 });
      copyFileSync(file, paths.dbFile);
    },
  });
  const old = h.client({ apiKey: API_KEY, sessionId: 'customer-4711' });
  const reply = await old.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'And the delivery date?' }] });
  assert.match(text(reply), /Turn 3/, 'the two turns stored before the migration are in the window');

  const { key: shopKey } = await h.daemon.store.keys.create('shop-b app', Date.now(), { tenant: 'shop-b' });
  const other = h.client({ apiKey: shopKey, sessionId: 'customer-4711' });
  const fresh = await other.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'Hi' }] });
  assert.match(text(fresh), /Turn 1/, "shop-b's customer-4711 is another session");

  const read = async (key: string) =>
    (await (await fetch(`${h.daemon.url}/v1/sessions/customer-4711`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
      tenant: string;
      messages: unknown[];
    };
  assert.deepEqual([(await read(API_KEY)).tenant, (await read(API_KEY)).messages.length], ['default', 6]);
  assert.deepEqual([(await read(shopKey)).tenant, (await read(shopKey)).messages.length], ['shop-b', 2]);

  await h.daemon.close('test over');
  const store = await openStore({ file: h.daemon.store.file });
  t.after(() => store.close());
  const check = await store.audit.verify(readAuditKeyring(join(dir, 'audit.key')));
  assert.equal(check.ok, true, JSON.stringify(check.broken));
  const tenants = (await store.audit.forSession('shop-b', 'customer-4711')).map((r) => r.tenant);
  assert.ok(tenants.length >= 2 && tenants.every((x) => x === 'shop-b'), JSON.stringify(tenants));
});
