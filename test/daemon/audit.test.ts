import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { readAuditKeyring } from '../../src/store/audit-key.js';
import { verifyAuditChain } from '../../src/store/audit-verify.js';
import { startHarness } from './harness.js';

test('each audit record names the session its handler served, and none for stateless requests', async (t) => {
  const h = await startHarness(t);
  await h.client({ sessionId: 'served-1' }).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] });
  await assert.rejects(
    h.client({ sessionId: 'served-2', profile: 'no-such-profile' }).chat.completions.create({
      model: 'cs-llm-sim',
      messages: [{ role: 'user', content: 'hi' }],
    }),
    /unknown profile/,
  );
  await h.client().chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'stateless' }] });
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/served-1`)).status, 200);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/never-was`, { method: 'DELETE' })).status, 404);
  const file = h.daemon.store.file;
  await h.daemon.close('test over');

  const db = new Database(file, { readonly: true });
  t.after(() => db.close());
  const rows = db.prepare('SELECT route, status, session_id FROM audit_log ORDER BY seq').all();
  assert.deepEqual(rows, [
    { route: '/v1/chat/completions', status: 200, session_id: 'served-1' },
    { route: '/v1/chat/completions', status: 400, session_id: 'served-2' },
    { route: '/v1/chat/completions', status: 200, session_id: null },
    { route: '/v1/sessions/:id', status: 200, session_id: 'served-1' },
    { route: '/v1/sessions/:id', status: 404, session_id: 'never-was' },
  ]);
});

test('when audit records cannot be written the queue stops at store.auditMaxQueue and the daemon refuses (503 audit_unavailable) until it drains', async (t) => {
  const h = await startHarness(t, { config: { store: { auditMaxQueue: 3, auditFlushMs: 20, busyTimeoutMs: 0 } } });
  const url = h.daemon.url;
  // Another process holds the write lock: every audit write fails (SQLITE_BUSY) and its records wait.
  const holder = new Database(h.daemon.store.file);
  t.after(() => holder.close());
  holder.exec('BEGIN IMMEDIATE');
  const chat = () =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] }),
    });
  for (let i = 0; i < 3; i++) assert.equal((await fetch(`${url}/v1/models`)).status, 200);

  const refused = await chat();
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get('retry-after'), '1');
  assert.equal(((await refused.json()) as { error: { code: string } }).error.code, 'audit_unavailable');
  assert.equal((await fetch(`${url}/v1/sessions`)).status, 503);
  assert.equal((await fetch(`${url}/healthz`)).status, 200, 'the process is alive');
  const notReady = await fetch(`${url}/readyz`);
  assert.equal(notReady.status, 503);
  assert.match(((await notReady.json()) as { audit: string }).audit, /^failed: 3 records not written \(limit 3\)/);

  // The lock goes: the queue drains within a flush and the daemon serves again.
  holder.exec('COMMIT');
  let ready = 503;
  for (let i = 0; i < 100 && ready !== 200; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const res = await fetch(`${url}/readyz`);
    await res.arrayBuffer();
    ready = res.status;
  }
  assert.equal(ready, 200);
  assert.equal((await chat()).status, 200);
  const metrics = await (await fetch(`${url}/metrics`)).text();
  assert.match(metrics, /^cs_llm_audit_records_dropped_total [1-9]/m);
  const file = h.daemon.store.file;
  await h.daemon.close('test over');

  // Every request that was served has its record; the refused ones (and probes while full) were not kept.
  const db = new Database(file, { readonly: true });
  t.after(() => db.close());
  const rows = db.prepare('SELECT route, status FROM audit_log ORDER BY seq').all() as Array<{ route: string; status: number }>;
  assert.deepEqual(rows.slice(0, 3), Array(3).fill({ route: '/v1/models', status: 200 }));
  assert.ok(!rows.some((r) => r.status === 503 && r.route !== '/readyz'));
  assert.ok(rows.some((r) => r.route === '/v1/chat/completions' && r.status === 200));
  assert.equal(verifyAuditChain(db, readAuditKeyring(join(h.paths.stateDir, 'audit.key'))).ok, true);
});
