import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { startDaemon } from '../../src/daemon/server.js';
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

/** The 429 the openai client raised: RateLimitError with code quota_exceeded and a whole-seconds Retry-After. */
function quotaError(err: unknown, pattern: RegExp): number {
  assert.ok(err instanceof OpenAI.RateLimitError, String(err));
  assert.equal(err.status, 429);
  assert.equal(err.code, 'quota_exceeded');
  assert.match(err.message, pattern);
  const retryAfter = Number(err.headers?.get('retry-after'));
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1, `Retry-After ${retryAfter}`);
  return retryAfter;
}

test('quotas per tenant: requests per minute, tokens per day and live sessions, each a 429 quota_exceeded with Retry-After', async (t) => {
  const { h, a, b, admin } = await twoTenants(t, {
    tenants: { 'shop-a': { requestsPerMinute: 3 }, 'shop-b': { maxSessions: 2 }, 'shop-c': { tokensPerDay: 1 } },
  });
  const c = (await h.daemon.store.keys.create('shop-c app', Date.now(), { tenant: 'shop-c' })).key;
  // requestsPerMinute: shop-a's fourth request within the minute is refused; shop-b is not held back by it.
  for (let i = 0; i < 3; i++) await ask(h.client({ apiKey: a }), `hello ${i}`);
  await assert.rejects(
    ask(h.client({ apiKey: a }), 'one more'),
    (err) => quotaError(err, /tenant shop-a reached its quota of 3 requests per minute/) <= 20,
  );
  await ask(h.client({ apiKey: b, sessionId: 's1' }), 'hi');

  // maxSessions: a third live session is refused (Retry-After: when the first expires), a live one goes on.
  await ask(h.client({ apiKey: b, sessionId: 's2' }), 'hi');
  await assert.rejects(ask(h.client({ apiKey: b, sessionId: 's3' }), 'hi'), (err) => quotaError(err, /quota of 2 live sessions/) > 3000);
  // tokensPerDay: a tenant may go on until its tokens today reach the quota (the engine's usage), then it is
  // refused until midnight UTC.
  await ask(h.client({ apiKey: c, sessionId: 'c1' }), 'hi');
  await assert.rejects(
    ask(h.client({ apiKey: c, sessionId: 'c1' }), 'again'),
    (err) => quotaError(err, /tenant shop-c reached its quota of 1 tokens per day/) <= 86_400,
  );

  const scrape = await (await fetch(`${h.daemon.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } })).text();
  assert.match(scrape, /cs_llm_tenant_requests_total\{tenant="shop-a"\} 4/);
  assert.match(scrape, /cs_llm_tenant_requests_total\{tenant="shop-b"\} 3/);
  assert.match(scrape, /cs_llm_tenant_requests_total\{tenant="shop-c"\} 2/);
  assert.match(scrape, /cs_llm_tenant_quota_exceeded_total\{tenant="shop-a",quota="requests"\} 1/);
  assert.match(scrape, /cs_llm_tenant_quota_exceeded_total\{tenant="shop-b",quota="sessions"\} 1/);
  assert.match(scrape, /cs_llm_tenant_quota_exceeded_total\{tenant="shop-c",quota="tokens"\} 1/);
  assert.match(scrape, /cs_llm_tenant_tokens_per_day_limit\{tenant="shop-c"\} 1/);
  assert.match(scrape, /cs_llm_tenant_tokens_today\{tenant="shop-c"\} [1-9]/);
  assert.match(scrape, /cs_llm_tokens_total\{upstream="[^"]+",tenant="shop-b",type="completion"\} [1-9]/);
});

test('a streamed reply counts against tokensPerDay, and a restarted daemon goes on counting from the stored usage of the day', async (t) => {
  const config = { tenants: { small: { tokensPerDay: 20 } } };
  const h = await startHarness(t, { config });
  const key = (await h.daemon.store.keys.create('small app', Date.now(), { tenant: 'small' })).key;
  const stream = await h.client({ apiKey: key }).chat.completions.create({
    model,
    stream: true,
    messages: [{ role: 'user', content: 'tell me a long story about parcels' }],
  });
  let streamed = '';
  for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
  assert.ok(streamed.length > 0);
  await assert.rejects(ask(h.client({ apiKey: key }), 'more'), (err) => quotaError(err, /quota of 20 tokens per day/) > 0);

  // The usage aggregates are written when the daemon stops; a new daemon counts today's tokens from them.
  await h.daemon.close('restart');
  const again = await startDaemon({ config: h.config, paths: h.paths, port: 0 });
  t.after(() => again.close('test over'));
  const client = new OpenAI({ baseURL: `${again.url}/v1`, apiKey: key, maxRetries: 0 });
  await assert.rejects(ask(client, 'after the restart'), (err) => quotaError(err, /quota of 20 tokens per day/) > 0);
});
