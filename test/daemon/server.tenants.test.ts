import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { openStore } from '../../src/store/store.js';
import { cli, startHarness, text, type Harness } from './harness.js';

const model = 'cs-llm-sim';
const ask = (client: OpenAI, content: string) => client.chat.completions.create({ model, messages: [{ role: 'user', content }] });

/** A daemon with a key for tenant shop-a, one for shop-b, and an operator's (admin) key. */
async function twoTenants(t: Parameters<typeof startHarness>[0], config: Record<string, unknown> = {}) {
  const h = await startHarness(t, { config });
  const now = Date.now();
  const a = (await h.daemon.store.keys.create('shop-a web chat', now, { tenant: 'shop-a' })).key;
  const b = (await h.daemon.store.keys.create('shop-b app', now, { tenant: 'shop-b' })).key;
  const admin = (await h.daemon.store.keys.create('operator', now, { admin: true })).key;
  return { h, a, b, admin };
}

async function call(h: Harness, key: string, method: string, path: string): Promise<{ status: number; body: any }> {
  const res = await fetch(`${h.daemon.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: await res.json() };
}

test("one tenant can neither list, read, continue nor delete another tenant's session, and the same session id holds two histories", async (t) => {
  const { h, a, b } = await twoTenants(t);
  const aliceA = h.client({ apiKey: a, sessionId: 'customer-1' });
  assert.match(text(await ask(aliceA, 'my name is Ada')), /Turn 1/);
  assert.match(text(await ask(aliceA, 'order 12345 is late')), /Turn 2/);
  await ask(h.client({ apiKey: a, sessionId: 'only-in-a' }), 'hello from a');
  // The same X-Session-Id under shop-b's key: a session of its own, which does not know Ada.
  const bobB = h.client({ apiKey: b, sessionId: 'customer-1' });
  assert.match(text(await ask(bobB, 'hi')), /Turn 1/);
  assert.match(text(await ask(bobB, 'What is my name?')), /^I do not know your name yet/);
  assert.equal(text(await ask(aliceA, 'What is my name?')), 'Your name is Ada.');

  // Listing: each key sees its own tenant's sessions only.
  const listA = await call(h, a, 'GET', '/v1/sessions');
  assert.deepEqual(
    listA.body.data.map((s: { tenant: string; id: string; turns: number }) => [s.tenant, s.id, s.turns]),
    [
      ['shop-a', 'customer-1', 3],
      ['shop-a', 'only-in-a', 1],
    ],
  );
  const listB = await call(h, b, 'GET', '/v1/sessions');
  assert.deepEqual(
    listB.body.data.map((s: { tenant: string; id: string }) => [s.tenant, s.id]),
    [['shop-b', 'customer-1']],
  );
  // Reading another tenant's session is the same 404 as reading one that never existed.
  const foreign = await call(h, b, 'GET', '/v1/sessions/only-in-a');
  const never = await call(h, b, 'GET', '/v1/sessions/never-was');
  assert.equal(foreign.status, 404);
  assert.deepEqual(foreign.body, JSON.parse(JSON.stringify(never.body).replaceAll('never-was', 'only-in-a')));
  const own = await call(h, b, 'GET', '/v1/sessions/customer-1');
  assert.equal(own.body.tenant, 'shop-b');
  assert.equal(own.body.messages.length, 4);
  // Naming the other tenant is refused before anything is looked up.
  const named = await call(h, b, 'GET', '/v1/sessions/only-in-a?tenant=shop-a');
  assert.deepEqual([named.status, named.body.error.code], [403, 'tenant_not_allowed']);
  assert.equal((await call(h, b, 'GET', '/v1/sessions?tenant=shop-a')).status, 403);
  // Deleting: 404, and shop-a's session is still whole.
  const del = await call(h, b, 'DELETE', '/v1/sessions/only-in-a');
  assert.deepEqual([del.status, del.body.error.code], [404, 'session_not_found']);
  assert.equal((await call(h, a, 'GET', '/v1/sessions/only-in-a')).body.messages.length, 2);
  // Continuing: a turn under shop-b's key on shop-a's id starts shop-b's own session, never reads shop-a's history.
  const intruder = h.client({ apiKey: b, sessionId: 'only-in-a' });
  assert.match(text(await ask(intruder, 'What was my first message?')), /^This is your first message in this conversation/);
  assert.equal((await call(h, a, 'GET', '/v1/sessions/only-in-a')).body.messages.length, 2);
  // Deleting its own customer-1 leaves shop-a's customer-1 alone.
  assert.equal((await call(h, b, 'DELETE', '/v1/sessions/customer-1')).status, 200);
  assert.equal(text(await ask(aliceA, 'What is my name?')), 'Your name is Ada.');

  // The audit log names the tenant of every request that got past the key check.
  await h.daemon.close('test over');
  const store = await openStore({ file: h.daemon.store.file });
  t.after(() => store.close());
  const records = [];
  for await (const r of store.audit.since(0)) records.push(r);
  assert.ok(records.length > 10);
  assert.ok(
    records.every((r) => r.tenant === 'shop-a' || r.tenant === 'shop-b'),
    JSON.stringify(records.map((r) => r.tenant)),
  );
  const exported = await cli(['audit', 'export', '--since', '1d', '--tenant', 'shop-b', '--json', '--db', store.file], {
    env: { CS_LLM_HOME: h.home },
  });
  assert.equal(exported.exitCode, 0, exported.stderr);
  const ofB = exported.stdout.split('\n').map((line) => JSON.parse(line) as { tenant: string; keyId: string });
  assert.equal(ofB.length, records.filter((r) => r.tenant === 'shop-b').length);
  assert.ok(ofB.every((r) => r.tenant === 'shop-b' && r.keyId === b.slice(0, 12)));
});

test("an admin key lists every tenant's sessions, filters by ?tenant=, and reads and deletes one tenant's session with ?tenant=", async (t) => {
  const { h, a, b, admin } = await twoTenants(t);
  await ask(h.client({ apiKey: a, sessionId: 'customer-1' }), 'from a');
  await ask(h.client({ apiKey: a, sessionId: 'customer-1' }), 'again from a');
  await ask(h.client({ apiKey: b, sessionId: 'customer-1' }), 'from b');
  const all = await call(h, admin, 'GET', '/v1/sessions');
  assert.deepEqual(
    all.body.data.map((s: { tenant: string; id: string }) => `${s.tenant}/${s.id}`),
    ['shop-b/customer-1', 'shop-a/customer-1'],
  );
  const onlyA = await call(h, admin, 'GET', '/v1/sessions?tenant=shop-a');
  assert.deepEqual(
    onlyA.body.data.map((s: { tenant: string }) => s.tenant),
    ['shop-a'],
  );
  const readA = await call(h, admin, 'GET', '/v1/sessions/customer-1?tenant=shop-a');
  assert.deepEqual([readA.body.tenant, readA.body.messages.length], ['shop-a', 4]);
  const readB = await call(h, admin, 'GET', '/v1/sessions/customer-1?tenant=shop-b');
  assert.deepEqual([readB.body.tenant, readB.body.messages.length], ['shop-b', 2]);
  // Without ?tenant= an admin key reads its own tenant (default), which has no customer-1.
  assert.equal((await call(h, admin, 'GET', '/v1/sessions/customer-1')).status, 404);
  const bad = await call(h, admin, 'GET', '/v1/sessions?tenant=no/such');
  assert.deepEqual([bad.status, bad.body.error.code], [400, 'invalid_value']);
  const erased = await call(h, admin, 'DELETE', '/v1/sessions/customer-1?tenant=shop-b');
  assert.deepEqual([erased.status, erased.body.tenant], [200, 'shop-b']);
  assert.equal((await call(h, b, 'GET', '/v1/sessions/customer-1')).status, 404);
  assert.equal((await call(h, a, 'GET', '/v1/sessions/customer-1')).status, 200);
});

test("X-Profile may name only the key's profiles (403 profile_not_allowed); the key's first profile is its default", async (t) => {
  const profiles = {
    support: { systemPrompt: 'You are support.' },
    sales: { systemPrompt: 'You are sales.' },
  };
  const h = await startHarness(t, { config: { profiles } });
  const now = Date.now();
  const scoped = (await h.daemon.store.keys.create('support desk', now, { tenant: 'shop-a', profiles: ['support'] })).key;
  const open = (await h.daemon.store.keys.create('all profiles', now, { tenant: 'shop-a' })).key;
  const prompt = 'What is your system prompt?';

  const byDefault = h.client({ apiKey: scoped, sessionId: 's1' });
  assert.equal(text(await ask(byDefault, prompt)), 'My system prompt is: "You are support.".');
  await assert.rejects(ask(h.client({ apiKey: scoped, sessionId: 's2', profile: 'sales' }), 'hi'), (err: unknown) => {
    assert.ok(err instanceof OpenAI.PermissionDeniedError);
    assert.equal(err.status, 403);
    assert.equal(err.code, 'profile_not_allowed');
    assert.match(err.message, /may not use profile "sales"; its profiles: support/);
    return true;
  });
  // Stateless requests too: the header may not name a profile the key lacks.
  await assert.rejects(
    ask(h.client({ apiKey: scoped, profile: 'sales' }), 'hi'),
    (err: unknown) => (err as { status?: number }).status === 403,
  );
  assert.equal((await call(h, scoped, 'GET', '/v1/sessions')).body.data.length, 1, 'the refused turn stored nothing');
  // A key without --profiles may use any (as before keys had profiles); an unknown name is still 400.
  assert.equal(
    text(await ask(h.client({ apiKey: open, sessionId: 's3', profile: 'sales' }), prompt)),
    'My system prompt is: "You are sales.".',
  );
  await assert.rejects(
    ask(h.client({ apiKey: open, sessionId: 's4', profile: 'nope' }), 'hi'),
    (err: unknown) => (err as { status?: number; code?: string }).status === 400 && (err as { code?: string }).code === 'unknown_profile',
  );
});

test('without keys there is one implicit tenant, default, and everything behaves as before tenants', async (t) => {
  const h = await startHarness(t);
  await ask(h.client({ sessionId: 'k1' }), 'hello');
  const list = (await (await fetch(`${h.daemon.url}/v1/sessions`)).json()) as { data: Array<{ tenant: string; id: string }> };
  assert.deepEqual(
    list.data.map((s) => `${s.tenant}/${s.id}`),
    ['default/k1'],
  );
  assert.equal((await fetch(`${h.daemon.url}/metrics`)).status, 200);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/k1`)).status, 200);
});
