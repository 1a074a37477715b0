import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolvePaths } from '../../../src/core/paths.js';
import { parseDuration } from '../../../src/cli/commands/sessions.js';
import { openStore } from '../../../src/store/store.js';
import { cli } from '../../daemon/harness.js';

test('keys create prints the key once, list shows only its prefix, revoke stops it', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-cli-'));
  const env = { CS_LLM_HOME: dir };
  const created = await cli(['keys', 'create', 'support-frontend'], { env });
  assert.equal(created.exitCode, 0, created.stderr);
  const key = created.stdout.trim();
  assert.match(key, /^csk_[A-Za-z0-9_-]{40,}$/);
  assert.match(created.stderr, /shown only now/);

  const listed = await cli(['keys', 'list'], { env });
  assert.match(listed.stdout, new RegExp(`prefix=${key.slice(0, 12)} name="support-frontend" status=active`));
  assert.equal(listed.stdout.includes(key), false);

  const store = await openStore({ file: resolvePaths(env).dbFile });
  assert.notEqual(await store.keys.verify(key), null);
  await store.close();

  const revoked = await cli(['keys', 'revoke', key.slice(0, 12)], { env });
  assert.equal(revoked.exitCode, 0, revoked.stderr);
  const missing = await cli(['keys', 'revoke', key.slice(0, 12)], { env });
  assert.equal(missing.exitCode, 9, missing.stderr);
  const again = await openStore({ file: resolvePaths(env).dbFile });
  assert.equal(await again.keys.verify(key), null);
  await again.close();
});

test('sessions list, show, delete and prune work on the database the daemon writes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-cli-'));
  const env = { CS_LLM_HOME: dir };
  const store = await openStore({ file: resolvePaths(env).dbFile });
  const now = Date.now();
  await store.sessions.appendTurn(
    'default',
    'fresh',
    'default',
    [
      { role: 'user', content: 'hello there' },
      { role: 'assistant', content: 'hi!' },
    ],
    3_600_000,
    now,
  );
  await store.sessions.appendTurn(
    'default',
    'old',
    'default',
    [{ role: 'user', content: 'ancient' }],
    90 * 86_400_000,
    now - 40 * 86_400_000,
  );
  await store.sessions.appendTurn('default', 'gone', 'default', [{ role: 'user', content: 'expired' }], 1000, now - 10_000);
  await store.close();

  const list = await cli(['sessions', 'list', '--json'], { env });
  // the latest to expire first: 'old' was given a 90-day TTL
  assert.deepEqual(
    (JSON.parse(list.stdout) as { sessions: Array<{ id: string }> }).sessions.map((s) => s.id),
    ['old', 'fresh'],
  );
  const show = await cli(['sessions', 'show', 'fresh'], { env });
  assert.equal(show.stdout, 'user: hello there\nassistant: hi!');
  const prune = await cli(['sessions', 'prune', '--older-than', '30d'], { env });
  assert.match(prune.stdout, /deleted 1 expired session\(s\) and 1 not updated for 30d/);
  const del = await cli(['sessions', 'delete', 'fresh'], { env });
  assert.equal(del.exitCode, 0);
  const after = await openStore({ file: resolvePaths(env).dbFile });
  assert.deepEqual((await after.sessions.list({ tenant: null, now: Date.now(), limit: 10 })).sessions, []);
  await after.close();
  const bad = await cli(['sessions', 'prune', '--older-than', 'a while'], { env });
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /not a duration/);
});

test('durations accept s, m, h, d and w', () => {
  assert.equal(parseDuration('45s'), 45_000);
  assert.equal(parseDuration('30d'), 30 * 86_400_000);
  assert.equal(parseDuration('2w'), 14 * 86_400_000);
  assert.throws(() => parseDuration('30'), /not a duration/);
});
