import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../../src/core/errors.js';
import { createCipher, keyIdOf, parseKey } from '../../src/store/crypto.js';
import { openStore } from '../../src/store/store.js';
import { startHarness, text } from '../daemon/harness.js';
import { runCli } from '../helpers/cli.js';
import { foundIn } from '../helpers/db-files.js';
import { storeTest } from '../helpers/stores.js';

const KEY_A = Buffer.alloc(32, 7).toString('base64');
const KEY_B = Buffer.alloc(32, 9).toString('base64');
const HOUR = 3_600_000;

function tempFile(): { home: string; file: string } {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-crypt-'));
  return { home, file: join(home, 'cs-llm.db') };
}

const turn = (marker: string) => [
  { role: 'user', content: `please look up ${marker}-content` },
  {
    role: 'assistant',
    content: null,
    tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: `{"q":"${marker}-args"}` } }],
  },
  { role: 'tool', tool_call_id: 'c1', content: `${marker}-result` },
];

storeTest('with a key, the files hold no plaintext of stored messages, and they read back with the key', async (t, backend) => {
  const cipher = createCipher(parseKey(KEY_A, 'test'));
  const store = await backend.open({ protection: { cipher } });
  await store.sessions.appendTurn('default', 'enc', 'default', turn('SECRET1'), HOUR, Date.now());
  for (const where of ['-content', '-args', '-result'])
    assert.deepEqual(await backend.textFound(`SECRET1${where}`), [], `no SECRET1${where} in the WAL`);
  assert.equal(await store.maintenance.scrub(5000), true);
  for (const where of ['-content', '-args', '-result'])
    assert.deepEqual(await backend.textFound(`SECRET1${where}`), [], `no SECRET1${where} in the database file`);
  const back = (await store.sessions.get('default', 'enc', Date.now()))!.messages;
  assert.deepEqual(back, turn('SECRET1'));
  assert.deepEqual(
    (await store.sessions.loadWindow('default', 'enc', 10, Date.now())).map((m) => m.message),
    turn('SECRET1'),
  );
  assert.deepEqual(await backend.rows('SELECT DISTINCT key_id FROM messages'), [{ key_id: cipher.keyId }]);
  assert.equal(cipher.keyId, keyIdOf(parseKey(KEY_A, 'test')));
  assert.equal(cipher.keyId.length, 12);
});

storeTest('a deleted or expired encrypted session never reads back its old text under a reused id', async (t, backend) => {
  const store = await backend.open({ protection: { cipher: createCipher(parseKey(KEY_A, 'test')) } });
  const now = Date.now();
  await store.sessions.appendTurn('default', 'reused', 'default', [{ role: 'user', content: 'first life' }], HOUR, now);
  assert.equal((await store.sessions.loadWindow('default', 'reused', 10, now))[0]!.message.content, 'first life');
  await store.sessions.delete('default', 'reused');
  await store.sessions.appendTurn('default', 'reused', 'default', [{ role: 'user', content: 'second life' }], 1000, now);
  assert.equal((await store.sessions.loadWindow('default', 'reused', 10, now))[0]!.message.content, 'second life');
  // Expired, then a new turn on the same id starts afresh.
  await store.sessions.appendTurn('default', 'reused', 'default', [{ role: 'user', content: 'third life' }], HOUR, now + 2000);
  assert.deepEqual(
    (await store.sessions.loadWindow('default', 'reused', 10, now + 2000)).map((m) => m.message.content),
    ['third life'],
  );
});

test('an encrypted value copied to the same session id and position of another tenant does not open there', async (t) => {
  const { file } = tempFile();
  const store = await openStore({ file, protection: { cipher: createCipher(parseKey(KEY_A, 'test')) } });
  t.after(() => store.close());
  const now = Date.now();
  await store.sessions.appendTurn('shop-a', 'c1', 'default', [{ role: 'user', content: 'shop-a text' }], HOUR, now);
  await store.sessions.appendTurn('shop-b', 'c1', 'default', [{ role: 'user', content: 'shop-b text' }], HOUR, now);
  // Someone with write access moves shop-a's ciphertext into shop-b's row: shop-b's reader gets an error, not shop-a's text.
  const writer = new Database(file);
  writer
    .prepare(
      "UPDATE messages SET content = (SELECT content FROM messages WHERE tenant = 'shop-a' AND session_id = 'c1') WHERE tenant = 'shop-b'",
    )
    .run();
  writer.close();
  const reopened = await openStore({ file, protection: { cipher: createCipher(parseKey(KEY_A, 'test')) } });
  t.after(() => reopened.close());
  await assert.rejects(reopened.sessions.get('shop-b', 'c1', now));
  assert.equal((await reopened.sessions.get('shop-a', 'c1', now))!.messages[0]!.content, 'shop-a text');
});

storeTest('opening encrypted rows without the key, or with another, is a clear error naming the key id and the fix', async (t, backend) => {
  const a = createCipher(parseKey(KEY_A, 'test'));
  const store = await backend.open({ protection: { cipher: a } });
  await store.sessions.appendTurn('default', 'enc', 'default', turn('S2'), HOUR, Date.now());
  await store.close();

  const bare = await backend.open();
  await assert.rejects(
    () => bare.sessions.get('default', 'enc', Date.now()),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes(`encrypted (key ${a.keyId}) and no encryption key is configured`) &&
      /CS_LLM_STORE_KEY/.test(err.next ?? ''),
  );
  await assert.rejects(() => bare.maintenance.requireContentKeys(), /no encryption key is configured/);
  const b = createCipher(parseKey(KEY_B, 'test'));
  const withB = await backend.open({ protection: { cipher: b } });
  await assert.rejects(
    () => withB.maintenance.requireContentKeys(),
    new RegExp(`encrypted with key ${a.keyId}, but the key in force is ${b.keyId}`),
  );
  const withA = await backend.open({ protection: { cipher: a } });
  await withA.maintenance.requireContentKeys();
});

test('the daemon encrypts what it stores and refuses to start on encrypted rows without their key', async (t) => {
  const h = await startHarness(t, { config: { store: { key: KEY_A } } });
  const reply = text(
    await h
      .client({ sessionId: 'e1' })
      .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'DAEMON-SECRET here' }] }),
  );
  assert.match(reply, /DAEMON-SECRET/);
  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/e1`)).json()) as { messages: Array<{ content: string }> };
  assert.equal(stored.messages[0]!.content, 'DAEMON-SECRET here');
  const file = h.daemon.store.file;
  await h.daemon.close('test over');
  assert.deepEqual(foundIn(file, 'DAEMON-SECRET'), []);

  const { loadConfig } = await import('../../src/core/config.js');
  const { startDaemon } = await import('../../src/daemon/server.js');
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: h.home }, flags: { daemon: { upstream: h.sim.url } } });
  await assert.rejects(startDaemon({ config, paths, port: 0 }), /no encryption key is configured/);
});

storeTest('rotate-key re-encrypts every row (plain-text ones too) so that only the new key opens them', async (t, backend) => {
  const { home } = tempFile();
  const file = backend.location;
  const plain = await backend.open();
  await plain.sessions.appendTurn('default', 'before', 'default', turn('PLAIN'), HOUR, Date.now());
  await plain.close();
  const a = createCipher(parseKey(KEY_A, 'test'));
  const withA = await backend.open({ protection: { cipher: a } });
  for (let i = 0; i < 30; i++) await withA.sessions.appendTurn('default', `s${i}`, 'default', turn(`ROT${i}`), HOUR, Date.now());
  await withA.close();
  assert.ok((await backend.textFound('PLAIN-content')).length > 0, 'stored before encryption was turned on');

  const keyFile = join(home, 'new.key');
  writeFileSync(keyFile, `${KEY_B}\n`, { mode: 0o600 });
  const rotated = await runCli(['store', 'rotate-key', '--new-key-file', keyFile, '--db', file], {
    env: { CS_LLM_HOME: home, CS_LLM_STORE_KEY: KEY_A },
  });
  assert.equal(rotated.exitCode, 0, String(rotated.stderr));
  const b = createCipher(parseKey(KEY_B, 'test'));
  assert.match(
    String(rotated.stdout),
    new RegExp(`re-encrypted 93 message\\(s\\) with key ${b.keyId}; key ${a.keyId} no longer opens them`),
  );
  assert.deepEqual(await backend.textFound('PLAIN-content'), []);

  const withB = await backend.open({ protection: { cipher: b } });
  await withB.maintenance.requireContentKeys();
  assert.deepEqual((await withB.sessions.get('default', 'before', Date.now()))!.messages, turn('PLAIN'));
  assert.deepEqual((await withB.sessions.get('default', 's17', Date.now()))!.messages, turn('ROT17'));
  const oldKey = await backend.open({ protection: { cipher: a } });
  await assert.rejects(
    () => oldKey.sessions.get('default', 's17', Date.now()),
    new RegExp(`encrypted with key ${b.keyId}, but the key in force is ${a.keyId}`),
  );
  await assert.rejects(() => oldKey.maintenance.requireContentKeys(), /encrypted with key/);
});

test('a name an earlier build stored in clear in an encrypted row still reads, and rotate-key encrypts it', async (t) => {
  const { home, file } = tempFile();
  const a = createCipher(parseKey(KEY_A, 'test'));
  const store = await openStore({ file, protection: { cipher: a, detectors: [] } });
  await store.sessions.appendTurn('default', 'old', 'default', [{ role: 'user', name: 'OLDNAME', content: 'hi' }], HOUR, Date.now());
  await store.close();
  assert.deepEqual(foundIn(file, 'OLDNAME'), [], 'names are encrypted now');
  const db = new Database(file);
  db.prepare("UPDATE messages SET name = 'OLDNAME' WHERE session_id = 'old'").run(); // as an earlier build left it
  db.close();
  const reopened = await openStore({ file, protection: { cipher: a, detectors: [] } });
  assert.equal((await reopened.sessions.get('default', 'old', Date.now()))!.messages[0]!.name, 'OLDNAME');
  await reopened.close();

  const keyFile = join(home, 'b.key');
  writeFileSync(keyFile, `${KEY_B}\n`, { mode: 0o600 });
  const rotated = await runCli(['store', 'rotate-key', '--new-key-file', keyFile, '--db', file], {
    env: { CS_LLM_HOME: home, CS_LLM_STORE_KEY: KEY_A },
  });
  assert.equal(rotated.exitCode, 0, String(rotated.stderr));
  assert.deepEqual(foundIn(file, 'OLDNAME'), []);
  const b = await openStore({ file, protection: { cipher: createCipher(parseKey(KEY_B, 'test')), detectors: [] } });
  t.after(() => b.close());
  assert.equal((await b.sessions.get('default', 'old', Date.now()))!.messages[0]!.name, 'OLDNAME');
});
