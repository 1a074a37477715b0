import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { resolvePaths } from '../../src/core/paths.js';
import { startSimulator } from '../../src/sim/server.js';
import { auditKeyFile } from '../../src/store/audit-key.js';
import { createCipher, parseKey } from '../../src/store/crypto.js';
import { openStore } from '../../src/store/store.js';
import { cli, runDaemon } from './harness.js';

const KEY_A = Buffer.alloc(32, 3).toString('base64');
const KEY_B = Buffer.alloc(32, 5).toString('base64');
const DAY = 86_400_000;

/** A POST on the control socket as any client could send it. */
function control(socketPath: string, path: string, body: unknown): Promise<{ status: number; body: { error?: { message: string } } }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ socketPath, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as { error?: { message: string } } }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

test('while the daemon runs, sessions delete and prune, audit prune, store scrub and rotate-key are done by it over its control socket, with the output they always had', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-control-'));
  const env = { CS_LLM_HOME: home, CS_LLM_STORE_KEY: KEY_A };
  const paths = resolvePaths(env);
  const a = createCipher(parseKey(KEY_A, 'test'));
  const b = createCipher(parseKey(KEY_B, 'test'));

  // What there is to delete, stored before the daemon starts: a session to erase, one unused for 40 days, one
  // to keep, and two audit records older than 30 days.
  const now = Date.now();
  const seed = await openStore({ file: paths.dbFile, protection: { cipher: a } });
  const turn = (text: string) => [{ role: 'user', content: text }];
  await seed.sessions.appendTurn('default', 'erase-me', 'default', turn('ERASE'), DAY, now);
  await seed.sessions.appendTurn('default', 'stale', 'default', turn('STALE'), 90 * DAY, now - 40 * DAY);
  await seed.sessions.appendTurn('default', 'keep', 'default', turn('KEEP'), DAY, now);
  const writer = seed.audit.writer(await seed.audit.keyring(auditKeyFile({ store: {} }, paths)));
  for (const age of [45, 35]) {
    writer.append({
      at: now - age * DAY,
      keyId: null,
      method: 'POST',
      route: '/v1/chat/completions',
      sessionId: 'stale',
      upstream: null,
      status: 200,
      outcome: 'ok',
      errorCode: null,
      promptTokens: null,
      completionTokens: null,
      latencyMs: 1,
      upstreamMs: 0,
    });
  }
  writer.close();
  await seed.close();

  const sim = await startSimulator({ port: 0 });
  t.after(() => sim.close());
  const { child, state } = await runDaemon(t, sim.url, { home, env: { CS_LLM_STORE_KEY: KEY_A } });
  let daemonLog = '';
  child.stderr!.on('data', (chunk: Buffer) => (daemonLog += chunk.toString()));
  assert.equal((statSync(paths.controlSocket).mode & 0o777).toString(8), '600', 'only the daemon user may connect');

  const deleted = await cli(['sessions', 'delete', 'erase-me'], { env });
  assert.equal(deleted.exitCode, 0, deleted.stderr);
  assert.equal(deleted.stdout, 'deleted session erase-me; its text is gone from the database and WAL files');
  assert.equal(deleted.stderr, '');

  const missing = await cli(['sessions', 'delete', 'never-was'], { env });
  assert.equal(missing.exitCode, 9, missing.stderr);
  assert.match(missing.stderr, /no session "never-was"/);

  const pruned = await cli(['sessions', 'prune', '--older-than', '30d', '--json'], { env });
  assert.equal(pruned.exitCode, 0, pruned.stderr);
  assert.deepEqual(JSON.parse(pruned.stdout), { expired: 0, old: 1 });

  const auditPruned = await cli(['audit', 'prune', '--older-than', '30d', '--json'], { env });
  assert.equal(auditPruned.exitCode, 0, auditPruned.stderr);
  assert.equal((JSON.parse(auditPruned.stdout) as { pruned: number }).pruned, 2);

  const scrubbed = await cli(['store', 'scrub', '--rewrite'], { env });
  assert.equal(scrubbed.exitCode, 0, scrubbed.stderr);
  assert.match(
    scrubbed.stdout,
    /^rewrote .*cs-llm\.db from its live rows \([\d.]+ MiB -> [\d.]+ MiB\)\nscrubbed .*cs-llm\.db: the WAL is empty/,
  );

  const keyFile = join(home, 'b.key');
  writeFileSync(keyFile, `${KEY_B}\n`, { mode: 0o600 });
  const rotated = await cli(['store', 'rotate-key', '--new-key-file', keyFile], { env });
  assert.equal(rotated.exitCode, 0, rotated.stderr);
  assert.match(rotated.stdout, new RegExp(`re-encrypted 1 message\\(s\\) with key ${b.keyId}; key ${a.keyId} no longer opens them`));
  assert.match(rotated.stdout, new RegExp(`the running daemon \\(pid ${state.pid}\\) stores new turns with it already`));

  // The daemon did them: its log says so, and its audit log holds one record per operation.
  for (const route of ['/sessions/delete', '/sessions/prune', '/audit/prune', '/store/scrub', '/store/rotate-key'])
    assert.match(daemonLog, new RegExp(`control: ${route} done`));
  let routes: string[] = [];
  for (let tries = 0; tries < 50 && routes.length < 6; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const exported = await cli(['audit', 'export', '--since', '1h', '--json'], { env });
    routes = exported.stdout
      .split('\n')
      .filter((line) => line.includes('"control:'))
      .map((line) => (JSON.parse(line) as { route: string }).route);
  }
  assert.deepEqual(routes, [
    'control:/sessions/delete',
    'control:/sessions/delete',
    'control:/sessions/prune',
    'control:/audit/prune',
    'control:/store/scrub',
    'control:/store/rotate-key',
  ]);

  // The daemon stores new turns under the new key at once: after the rotation, B alone opens everything.
  const res = await request(`${state.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'after' },
    body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'AFTER' }] }),
  });
  assert.equal(res.statusCode, 200, await res.body.text());
  const withB = await openStore({ file: paths.dbFile, protection: { cipher: b } });
  t.after(() => withB.close());
  assert.equal((await withB.sessions.get('default', 'keep', Date.now()))?.messages[0]?.content, 'KEEP');
  assert.equal((await withB.sessions.get('default', 'after', Date.now()))?.messages.length, 2);
  assert.equal(await withB.sessions.get('default', 'erase-me', Date.now()), null);
  assert.equal(await withB.sessions.get('default', 'stale', Date.now()), null);
});

test('the control socket refuses a field it does not know, so a newer command is never done more widely than it asked', async (t) => {
  const sim = await startSimulator({ port: 0 });
  t.after(() => sim.close());
  const { paths } = await runDaemon(t, sim.url);
  const answer = await control(paths.controlSocket, '/sessions/prune', { olderThanMs: DAY, profile: 'sales' });
  assert.equal(answer.status, 400);
  assert.match(answer.body.error!.message, /does not know the field "profile" of \/sessions\/prune/);
  const badTenant = await control(paths.controlSocket, '/sessions/delete-tenant', { tenant: 'a/b' });
  assert.equal(badTenant.status, 400);
  const wrong = await control(paths.controlSocket, '/sessions/delete', { id: 7 });
  assert.equal(wrong.status, 400);
  assert.match(wrong.body.error!.message, /"id" of \/sessions\/delete must be a string/);
  assert.equal((await control(paths.controlSocket, '/sessions/prune', {})).status, 200);
});

test('while the daemon runs, sessions delete --tenant and delete --tenant T --all go through it, and touch that tenant only', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-control-'));
  const env = { CS_LLM_HOME: home };
  const paths = resolvePaths(env);
  const now = Date.now();
  const seed = await openStore({ file: paths.dbFile });
  for (const [tenant, id] of [
    ['shop-a', 'c1'],
    ['shop-a', 'c2'],
    ['shop-b', 'c1'],
    ['default', 'c1'],
  ] as const)
    await seed.sessions.appendTurn(tenant, id, 'default', [{ role: 'user', content: `${tenant}-${id}` }], DAY, now);
  await seed.close();
  const sim = await startSimulator({ port: 0 });
  t.after(() => sim.close());
  await runDaemon(t, sim.url, { home });

  const one = await cli(['sessions', 'delete', 'c1', '--tenant', 'shop-b'], { env });
  assert.equal(one.exitCode, 0, one.stderr);
  assert.equal(one.stdout, 'deleted session c1 of tenant shop-b; its text is gone from the database and WAL files');
  const all = await cli(['sessions', 'delete', '--tenant', 'shop-a', '--all', '--json'], { env });
  assert.equal(all.exitCode, 0, all.stderr);
  assert.deepEqual(JSON.parse(all.stdout), { tenant: 'shop-a', deleted: 2 });
  const left = JSON.parse((await cli(['sessions', 'list', '--json'], { env })).stdout) as {
    sessions: Array<{ tenant: string; id: string }>;
  };
  assert.deepEqual(
    left.sessions.map((s) => `${s.tenant}/${s.id}`),
    ['default/c1'],
  );
  let records: Array<{ route: string; tenant: string | null }> = [];
  for (let tries = 0; tries < 50 && records.length < 2; tries++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    records = (await cli(['audit', 'export', '--since', '1h', '--json'], { env })).stdout
      .split('\n')
      .filter((line) => line.includes('"control:'))
      .map((line) => JSON.parse(line) as { route: string; tenant: string | null });
  }
  assert.deepEqual(
    records.map((r) => [r.route, r.tenant]),
    [
      ['control:/sessions/delete', 'shop-b'],
      ['control:/sessions/delete-tenant', 'shop-a'],
    ],
  );
});
