import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
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
