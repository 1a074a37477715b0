import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolvePaths } from '../../../src/core/paths.js';
import { openStore } from '../../../src/store/store.js';
import { cli } from '../../daemon/harness.js';
import { foundIn } from '../../helpers/db-files.js';

test('keys create --tenant --profiles --admin --json prints the key with its scope, and keys list shows the scope', async () => {
  const env = { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-cli-')) };
  const created = await cli(['keys', 'create', 'shop-b app', '--tenant', 'shop-b', '--profiles', 'support,sales', '--json'], { env });
  assert.equal(created.exitCode, 0, created.stderr);
  const json = JSON.parse(created.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(json), ['key', 'id', 'name', 'prefix', 'tenant', 'profiles', 'admin']);
  assert.deepEqual([json.name, json.tenant, json.profiles, json.admin], ['shop-b app', 'shop-b', ['support', 'sales'], false]);
  assert.equal(json.prefix, (json.key as string).slice(0, 12));
  assert.match(created.stderr, /profile\(s\) support, sales are not configured/);

  const admin = JSON.parse((await cli(['keys', 'create', 'ops', '--admin', '--json'], { env })).stdout) as Record<string, unknown>;
  assert.deepEqual([admin.tenant, admin.profiles, admin.admin], ['default', null, true]);

  const listed = await cli(['keys', 'list'], { env });
  assert.match(
    listed.stdout,
    new RegExp(`prefix=${json.prefix} name="shop-b app" status=active id=\\S+ tenant=shop-b profiles=support,sales admin=false`),
  );
  assert.match(listed.stdout, /name="ops" status=active id=\S+ tenant=default profiles=\* admin=true/);
  const listedJson = JSON.parse((await cli(['keys', 'list', '--json'], { env })).stdout) as {
    keys: Array<{ tenant: string; profiles: string[] | null; admin: boolean }>;
  };
  assert.deepEqual(
    listedJson.keys.map((k) => [k.tenant, k.profiles, k.admin]),
    [
      ['shop-b', ['support', 'sales'], false],
      ['default', null, true],
    ],
  );

  const bad = await cli(['keys', 'create', 'x', '--tenant', 'shop b'], { env });
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /--tenant "shop b" must be 1-64 letters, digits/);
  const empty = await cli(['keys', 'create', 'x', '--profiles', ','], { env });
  assert.equal(empty.exitCode, 2);
});

test('sessions list, show, export, delete and prune take --tenant; delete --tenant T --all erases a whole tenant without a trace', async () => {
  const env = { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-cli-')) };
  const file = resolvePaths(env).dbFile;
  const store = await openStore({ file });
  const now = Date.now();
  const turn = (text: string) => [
    { role: 'user', content: text },
    { role: 'assistant', content: `re: ${text}` },
  ];
  await store.sessions.appendTurn('shop-a', 'c1', 'default', turn('MARKER-a-c1'), 3_600_000, now);
  await store.sessions.appendTurn('shop-b', 'c1', 'default', turn('MARKER-b-c1'), 3_600_000, now + 1);
  await store.sessions.appendTurn('shop-b', 'c2', 'default', turn('MARKER-b-c2'), 3_600_000, now + 2);
  await store.sessions.appendTurn('shop-b', 'old', 'default', turn('MARKER-b-old'), 90 * 86_400_000, now - 40 * 86_400_000);
  await store.sessions.appendTurn('shop-a', 'old', 'default', turn('MARKER-a-old'), 90 * 86_400_000, now - 40 * 86_400_000);
  await store.close();

  const ids = async (args: string[]) =>
    (
      JSON.parse((await cli(['sessions', 'list', '--json', ...args], { env })).stdout) as {
        sessions: Array<{ tenant: string; id: string }>;
      }
    ).sessions
      .map((s) => `${s.tenant}/${s.id}`)
      .sort();
  assert.deepEqual(await ids([]), ['shop-a/c1', 'shop-a/old', 'shop-b/c1', 'shop-b/c2', 'shop-b/old']);
  assert.deepEqual(await ids(['--tenant', 'shop-a']), ['shop-a/c1', 'shop-a/old']);

  const show = await cli(['sessions', 'show', 'c1', '--tenant', 'shop-b'], { env });
  assert.equal(show.stdout, 'user: MARKER-b-c1\nassistant: re: MARKER-b-c1');
  const missing = await cli(['sessions', 'show', 'c1'], { env });
  assert.equal(missing.exitCode, 9);
  const exported = JSON.parse((await cli(['sessions', 'export', 'c1', '--tenant', 'shop-a'], { env })).stdout) as {
    tenant: string;
    session: { messages: Array<{ content: string }> };
  };
  assert.deepEqual([exported.tenant, exported.session.messages[0]!.content], ['shop-a', 'MARKER-a-c1']);

  const prune = await cli(['sessions', 'prune', '--older-than', '30d', '--tenant', 'shop-a'], { env });
  assert.match(prune.stdout, /and 1 not updated for 30d/);
  assert.deepEqual(await ids(['--tenant', 'shop-b']), ['shop-b/c1', 'shop-b/c2', 'shop-b/old']);

  const one = await cli(['sessions', 'delete', 'c1', '--tenant', 'shop-a'], { env });
  assert.equal(one.exitCode, 0, one.stderr);
  assert.match(one.stdout, /deleted session c1 of tenant shop-a; its text is gone/);
  assert.deepEqual(await ids([]), ['shop-b/c1', 'shop-b/c2', 'shop-b/old']);

  const noTenant = await cli(['sessions', 'delete', '--all'], { env });
  assert.equal(noTenant.exitCode, 2);
  assert.match(noTenant.stderr, /--all needs --tenant/);
  const all = await cli(['sessions', 'delete', '--tenant', 'shop-b', '--all', '--json'], { env });
  assert.equal(all.exitCode, 0, all.stderr);
  assert.deepEqual(JSON.parse(all.stdout), { tenant: 'shop-b', deleted: 3 });
  assert.deepEqual(await ids([]), []);
  for (const marker of ['MARKER-a-c1', 'MARKER-a-old', 'MARKER-b-c1', 'MARKER-b-c2', 'MARKER-b-old'])
    assert.deepEqual(foundIn(file, marker), [], `${marker} is gone from the database and its WAL`);
});
