import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import OpenAI from 'openai';
import { request } from 'undici';
import { deepMerge, loadConfig } from '../../src/core/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/server.js';
import { startSimulator } from '../../src/sim/server.js';

type Sim = Awaited<ReturnType<typeof startSimulator>>;
type SimOptions = Parameters<typeof startSimulator>[0];
type After = { after(fn: () => Promise<void> | void): void };

async function sim(t: After, options: SimOptions = {}): Promise<Sim> {
  const s = await startSimulator({ port: 0, ...options });
  t.after(() => s.close());
  return s;
}

async function daemon(t: After, daemonConfig: Record<string, unknown>, now?: () => number): Promise<Daemon> {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-routing-'));
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: deepMerge({ daemon: daemonConfig }) });
  const d = await startDaemon({ config, paths, port: 0, metrics: { gpu: false }, ...(now ? { now } : {}) });
  t.after(() => d.close('test over'));
  return d;
}

function client(d: Daemon, sessionId?: string): OpenAI {
  return new OpenAI({
    baseURL: `${d.url}/v1`,
    apiKey: 'unused',
    maxRetries: 0,
    timeout: 30_000,
    ...(sessionId ? { defaultHeaders: { 'X-Session-Id': sessionId } } : {}),
  });
}

async function post(d: Daemon, body: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await request(`${d.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }], ...body }),
  });
  return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
}

const ask = { model: 'cs-llm-sim', messages: [{ role: 'user' as const, content: 'hello there' }] };

test('a 429 storm on one upstream fails over to the other with no client errors', async (t) => {
  const busy = await sim(t, { fail429Rate: 1 });
  const fine = await sim(t);
  const d = await daemon(t, {
    upstreams: [
      { name: 'busy', url: busy.url },
      { name: 'fine', url: fine.url },
    ],
  });
  for (let i = 0; i < 20; i++) {
    const reply = await client(d, `storm-${i}`).chat.completions.create(ask);
    assert.match(reply.choices[0]!.message.content ?? '', /You said: "hello there"/);
  }
  assert.equal(fine.stats().completed, 20);
  // Retry-After (1 s) keeps the busy one out after its first 429s, so it sees only a few requests.
  assert.ok(busy.stats().requests >= 1 && busy.stats().requests < 20, `busy saw ${busy.stats().requests}`);
  const metrics = await (await fetch(`${d.url}/metrics`)).text();
  assert.match(metrics, /cs_llm_upstream_attempt_failures_total\{upstream="busy",reason="overloaded"\} [1-9]/);
});

test('when every upstream is overloaded the client gets 429 with Retry-After, and nothing is stored', async (t) => {
  const a = await sim(t, { fail429Rate: 1 });
  const b = await sim(t, { fail503Rate: 1 });
  // A clock that stands still: the upstreams' Retry-After never runs out during the test.
  const d = await daemon(
    t,
    {
      upstreams: [
        { name: 'a', url: a.url },
        { name: 'b', url: b.url },
      ],
    },
    () => 1_000_000,
  );
  const res = await post(d, {}, { 'x-session-id': 'overloaded' });
  assert.equal(res.status, 429);
  assert.match(String(res.headers['retry-after']), /^[1-9]\d*$/);
  const error = (JSON.parse(res.text) as { error: { type: string; code: string; message: string } }).error;
  assert.equal(error.type, 'rate_limit_error');
  assert.equal(error.code, 'upstream_overloaded');
  assert.equal(a.stats().requests + b.stats().requests, 2, 'each upstream was tried once');
  // Both are inside their Retry-After and no other could serve: one of them is still asked, and its own
  // answer goes back (the daemon never answers for an upstream it did not ask).
  const next = await post(d, {});
  assert.ok(next.status === 429 || next.status === 503, `status ${next.status}`);
  assert.equal(next.headers['retry-after'], '1');
  assert.equal(a.stats().requests + b.stats().requests, 3);
  assert.equal((await fetch(`${d.url}/v1/sessions/overloaded`)).status, 404);
});

test('a 429 from the only upstream is passed on for that request and never takes the daemon offline', async (t) => {
  const engine = await sim(t, { fail429Rate: 1 });
  // The clock stands still, so the engine's Retry-After (1 s) would last the whole test.
  const d = await daemon(t, { upstream: engine.url }, () => 1_000_000);
  const ai = client(d);
  for (let i = 1; i <= 3; i++) {
    await assert.rejects(ai.chat.completions.create(ask), (err: unknown) => {
      assert.ok(err instanceof OpenAI.RateLimitError, String(err));
      assert.equal(err.headers?.get('retry-after'), '1');
      assert.match(err.message, /simulated/, "the engine's own answer, not one the daemon made up");
      return true;
    });
    assert.equal(engine.stats().requests, i, 'every request reached the engine');
  }
  const session = await post(d, {}, { 'x-session-id': 'only-upstream' });
  assert.equal(session.status, 429);
  assert.equal(session.headers['retry-after'], '1');
  assert.equal(engine.stats().requests, 4);
  assert.equal((await fetch(`${d.url}/v1/sessions/only-upstream`)).status, 404);
});

test('a 5xx from one upstream is retried on the next before any byte reaches the client', async (t) => {
  const broken = await sim(t, { fail500Rate: 1 });
  const fine = await sim(t);
  // The broken one is preferred (the fine one is a weight-0 backup), so every request starts there.
  const d = await daemon(t, {
    upstreams: [
      { name: 'broken', url: broken.url, weight: 1 },
      { name: 'fine', url: fine.url, weight: 0 },
    ],
    ejectAfterFailures: 100,
  });
  const stream = await client(d, 'retry-5xx').chat.completions.create({ ...ask, stream: true });
  let content = '';
  for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
  assert.match(content, /You said: "hello there"/);
  assert.equal(broken.stats().requests, 1);
  assert.equal(fine.stats().completed, 1);
});

test('an upstream that keeps failing is ejected for a cool-down, then probed back by one request and restored', async (t) => {
  let clock = Date.now();
  const primary = await sim(t);
  const backup = await sim(t);
  const port = primary.port;
  const d = await daemon(
    t,
    {
      upstreams: [
        { name: 'primary', url: primary.url, weight: 1 },
        { name: 'backup', url: backup.url, weight: 0 },
      ],
      ejectAfterFailures: 2,
      ejectBaseMs: 30_000,
    },
    () => clock,
  );
  const ok = async () => assert.match((await client(d).chat.completions.create(ask)).choices[0]!.message.content ?? '', /hello there/);
  await ok();
  assert.equal(primary.stats().completed, 1);

  await primary.close(); // connections refused from now on
  await ok();
  await ok(); // second consecutive failure: ejected
  assert.equal(backup.stats().completed, 2, 'both failed over to the backup');
  const metrics = await (await fetch(`${d.url}/metrics`)).text();
  assert.match(metrics, /cs_llm_upstream_ejections_total\{upstream="primary"\} 1/);

  const revived = await sim(t, { port });
  await ok();
  assert.equal(revived.stats().requests, 0, 'still ejected: not even tried');
  assert.equal(backup.stats().completed, 3);

  clock += 30_001;
  await ok();
  assert.equal(revived.stats().completed, 1, 'after the cool-down one request probes it');
  await ok();
  assert.equal(revived.stats().completed, 2, 'restored');
  assert.equal(backup.stats().completed, 3);
});

test('remote upstreams are not used unless daemon.allowRemote is true', async (t) => {
  const local = await sim(t);
  const remote = await sim(t);
  const upstreams = [
    { name: 'local', url: local.url, weight: 0 },
    { name: 'cloud', url: remote.url, kind: 'remote', weight: 1 },
  ];
  const privateOnly = await daemon(t, { upstreams });
  for (let i = 0; i < 5; i++) await client(privateOnly).chat.completions.create(ask);
  assert.equal(remote.stats().requests, 0);
  assert.equal(local.stats().completed, 5);

  const allowed = await daemon(t, { upstreams, allowRemote: true });
  await client(allowed).chat.completions.create(ask);
  assert.equal(remote.stats().completed, 1, 'allowed: the weighted remote one is chosen');

  await assert.rejects(
    daemon(t, { upstreams: [{ name: 'cloud', url: remote.url, kind: 'remote' }] }),
    /every configured upstream is remote/,
  );
});

test('an upstream that hangs gives 504 at the timeout and is not retried; one that goes silent mid-stream gives an error event and nothing is stored', async (t) => {
  const hung = await sim(t, { hangRate: 1 });
  const fine = await sim(t);
  const d = await daemon(t, {
    upstreams: [
      { name: 'hung', url: hung.url, weight: 1 },
      { name: 'fine', url: fine.url, weight: 0 },
    ],
    upstreamTimeoutMs: 300,
  });
  const res = await post(d, {}, { 'x-session-id': 'hang' });
  assert.equal(res.status, 504);
  assert.equal((JSON.parse(res.text) as { error: { code: string } }).error.code, 'upstream_timeout');
  assert.equal(fine.stats().requests, 0);

  const slow = await sim(t, { tokensPerSecond: 2 });
  const idle = await daemon(t, { upstream: slow.url, streamIdleTimeoutMs: 150 });
  const streamed = await post(idle, { stream: true, messages: [{ role: 'user', content: 'count to 50' }] }, { 'x-session-id': 'idle' });
  assert.equal(streamed.status, 200);
  assert.match(streamed.text, /"code":"upstream_idle_timeout"/);
  assert.ok(!streamed.text.includes('[DONE]'));
  assert.equal((await fetch(`${idle.url}/v1/sessions/idle`)).status, 404);
});

test('admission: with the in-flight limit reached and the queue full, a request gets 429 with Retry-After at once', async (t) => {
  const slow = await sim(t, { tokensPerSecond: 20 });
  const d = await daemon(t, { upstream: slow.url, admission: { maxInFlight: 1, maxQueue: 0, maxQueueWaitMs: 2000 } });
  const first = await request(`${d.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'cs-llm-sim', stream: true, messages: [{ role: 'user', content: 'count to 40' }] }),
  });
  assert.equal(first.statusCode, 200);
  const reading = first.body.text();
  const refused = await post(d, {});
  assert.equal(refused.status, 429);
  assert.equal(refused.headers['retry-after'], '1');
  assert.equal((JSON.parse(refused.text) as { error: { code: string } }).error.code, 'rate_limit_exceeded');
  assert.match(await reading, /\[DONE\]/, 'the admitted request finishes normally');
  assert.equal((await post(d, {})).status, 200, 'the slot is free again');
});

test('admission: a queued request runs once a slot frees', async (t) => {
  const slow = await sim(t, { tokensPerSecond: 50 });
  const d = await daemon(t, { upstream: slow.url, admission: { maxInFlight: 1, maxQueue: 4, maxQueueWaitMs: 20_000 } });
  const replies = await Promise.all([1, 2, 3].map((i) => post(d, { messages: [{ role: 'user', content: `count to 5, request ${i}` }] })));
  assert.deepEqual(
    replies.map((r) => r.status),
    [200, 200, 200],
  );
});

test('shadow traffic never changes the client reply, and the comparison lands in the metrics', async (t) => {
  const main = await sim(t);
  const shadow = await sim(t);
  const broken = await sim(t, { fail500Rate: 1 });
  const plain = await daemon(t, { upstream: main.url });
  const mirrored = await daemon(t, {
    upstreams: [
      { name: 'main', url: main.url },
      { name: 'candidate', url: shadow.url },
    ],
    shadow: { upstream: 'candidate', percent: 100 },
  });
  const failing = await daemon(t, {
    upstreams: [
      { name: 'main', url: main.url },
      { name: 'candidate', url: broken.url },
    ],
    shadow: { upstream: 'candidate', percent: 100 },
  });

  const expected = (await client(plain, 'sh').chat.completions.create(ask)).choices[0]!.message.content;
  for (const d of [mirrored, failing]) {
    const reply = await client(d, 'sh').chat.completions.create(ask);
    assert.equal(reply.choices[0]!.message.content, expected);
    const stream = await client(d, 'sh-stream').chat.completions.create({ ...ask, stream: true });
    let content = '';
    for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
    assert.equal(content, expected);
  }
  await mirrored.close('flush the shadow requests');
  await failing.close('flush the shadow requests');
  assert.equal(shadow.stats().completed, 2, 'the shadow got both requests, after the replies');
  assert.equal(broken.stats().requests, 2);
});

test('the shadow comparison is exposed as metrics without message text', async (t) => {
  const main = await sim(t);
  const shadow = await sim(t);
  const d = await daemon(t, {
    upstreams: [
      { name: 'main', url: main.url },
      { name: 'candidate', url: shadow.url },
    ],
    shadow: { upstream: 'candidate', percent: 100 },
  });
  await client(d).chat.completions.create(ask);
  let metrics = '';
  // The shadow request runs after the reply: poll the scrape until it has been recorded.
  const recorded = /cs_llm_shadow_requests_total\{upstream="candidate",result="exact"\} 1/;
  for (let i = 0; i < 500 && !recorded.test(metrics); i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, 20));
    metrics = await (await fetch(`${d.url}/metrics`)).text();
  }
  assert.match(metrics, recorded);
  assert.match(metrics, /cs_llm_shadow_similarity_ratio_bucket\{le="1",upstream="candidate"\} 1/);
  assert.ok(!metrics.includes('hello there'));
});
