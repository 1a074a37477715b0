import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'undici';
import { loadConfig } from '../../src/core/config.js';
import { startDaemon } from '../../src/daemon/server.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startHarness } from './harness.js';
import { freePort } from '../helpers/ports.js';

interface ErrorShape {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(url: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: JSON.parse(text) as ErrorShape };
}

function assertOpenAiError(body: ErrorShape, code: string, param: string | null = null): void {
  assert.deepEqual(Object.keys(body), ['error']);
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.equal(body.error.code, code);
  assert.equal(body.error.param, param);
  assert.ok(body.error.message.length > 10);
  assert.doesNotMatch(body.error.message, /\n\s+at /, 'no stack trace');
}

test('every bad request gets its status and an OpenAI-shaped error naming the problem', async (t) => {
  const h = await startHarness(t);
  const url = h.daemon.url;
  const cases: Array<{ body: string; status: number; code: string; param?: string; headers?: Record<string, string> }> = [
    { body: '{"messages": [', status: 400, code: 'invalid_json' },
    { body: '[1, 2]', status: 400, code: 'invalid_body' },
    { body: '{}', status: 400, code: 'invalid_value', param: 'messages' },
    { body: '{"messages": []}', status: 400, code: 'invalid_value', param: 'messages' },
    { body: '{"messages": [{"role": "wizard", "content": "hi"}]}', status: 400, code: 'invalid_value', param: 'messages[0].role' },
    { body: '{"messages": [{"role": "user", "content": 42}]}', status: 400, code: 'invalid_value', param: 'messages[0].content' },
    { body: '{"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}', status: 400, code: 'invalid_value', param: 'stream' },
    {
      body: '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}',
      status: 400,
      code: 'invalid_value',
      param: 'max_tokens',
    },
    { body: '{"messages": [{"role": "user", "content": "hi"}], "model": 7}', status: 400, code: 'invalid_value', param: 'model' },
    {
      body: '{"messages": [{"role": "user", "content": "hi"}]}',
      status: 400,
      code: 'invalid_session_id',
      param: 'X-Session-Id',
      headers: { 'x-session-id': 'has spaces/and slashes' },
    },
    {
      body: '{"messages": [{"role": "user", "content": "hi"}]}',
      status: 400,
      code: 'invalid_session_id',
      param: 'X-Session-Id',
      headers: { 'x-session-id': 'x'.repeat(129) },
    },
    {
      body: '{"messages": [{"role": "system", "content": "be brief"}]}',
      status: 400,
      code: 'invalid_value',
      param: 'messages',
      headers: { 'x-session-id': 'only-system' },
    },
    {
      body: '{"messages": [{"role": "user", "content": "hi"}]}',
      status: 400,
      code: 'unknown_profile',
      param: 'X-Profile',
      headers: { 'x-session-id': 'ok', 'x-profile': 'nope' },
    },
  ];
  for (const c of cases) {
    const res = await post(url, c.body, c.headers);
    assert.equal(res.status, c.status, `${c.body} -> ${res.text}`);
    assertOpenAiError(res.json, c.code, c.param ?? null);
  }
});

test('a body that is not valid UTF-8 is 400 and reaches neither the engine nor the store', async (t) => {
  const h = await startHarness(t);
  // "caf" then 0xC3 0x28: a lead byte whose continuation is missing.
  const bad = Buffer.concat([
    Buffer.from('{"messages": [{"role": "user", "content": "caf'),
    Buffer.from([0xc3, 0x28]),
    Buffer.from('"}]}'),
  ]);
  for (const headers of [{}, { 'x-session-id': 'bad-bytes' }] as Array<Record<string, string>>) {
    const res = await post(h.daemon.url, bad, headers);
    assert.equal(res.status, 400, res.text);
    assertOpenAiError(res.json, 'invalid_encoding');
  }
  assert.equal(h.sim.stats().requests, 0);
  assert.equal((await request(`${h.daemon.url}/v1/sessions/bad-bytes`)).statusCode, 404);
});

test('names from the client are looked up as configured names only: toString, __proto__ and constructor are no profile or model mapping', async (t) => {
  const h = await startHarness(t, {
    config: {
      daemon: { upstreams: [{ name: 'mapped', url: 'http://127.0.0.1:1', models: { 'cs-llm-sim': 'cs-llm-sim' } }] },
      profiles: { support: { systemPrompt: 'Be kind.' } },
    },
    beforeStart: (_paths, config) => {
      // The one upstream is the simulator, with a model map (so the daemon looks the request's model up in it).
      config.daemon.upstreams[0]!.url = config.daemon.upstream;
    },
  });
  const body = JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] });
  for (const profile of ['toString', '__proto__', 'constructor', 'hasOwnProperty', 'valueOf']) {
    const res = await post(h.daemon.url, body, { 'x-session-id': 'proto', 'x-profile': profile });
    assert.equal(res.status, 400, `${profile}: ${res.text}`);
    assertOpenAiError(res.json, 'unknown_profile', 'X-Profile');
    assert.match(res.json.error.message, /configured: default, support/);
  }
  assert.equal(h.sim.stats().requests, 0);
  // A model named like an Object method is not in the upstream's map: it reaches the engine as it is.
  const res = await post(h.daemon.url, JSON.stringify({ model: 'constructor', messages: [{ role: 'user', content: 'hi' }] }));
  assert.equal(res.status, 404, res.text);
  assert.match(res.text, /constructor/);
});

test('a body over the limit is 413', async (t) => {
  const h = await startHarness(t, { config: { daemon: { bodyLimitBytes: 4096 } } });
  const big = JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(10_000) }] });
  const res = await post(h.daemon.url, big);
  assert.equal(res.status, 413);
  assertOpenAiError(res.json, 'body_too_large');
});

test('unknown routes are 404 and wrong methods 405 with Allow', async (t) => {
  const h = await startHarness(t);
  const missing = await request(`${h.daemon.url}/v1/embeddings`, { method: 'POST', body: '{}' });
  assert.equal(missing.statusCode, 404);
  assertOpenAiError((await missing.body.json()) as ErrorShape, 'unknown_route');
  const wrong = await request(`${h.daemon.url}/v1/chat/completions`, { method: 'GET' });
  assert.equal(wrong.statusCode, 405);
  assert.equal(wrong.headers.allow, 'POST');
  assertOpenAiError((await wrong.body.json()) as ErrorShape, 'method_not_allowed');
});

test('fields the daemon does not read reach the engine untouched, and engine errors come back with their status', async (t) => {
  const h = await startHarness(t);
  // The simulator's context is 8192 tokens: a max_tokens beyond it is the engine's own 400, passed through.
  const res = await post(
    h.daemon.url,
    JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }], max_tokens: 100_000 }),
  );
  assert.equal(res.status, 400);
  assert.match(res.text, /max|context|token/i);
  // response_format, temperature and a tool_choice naming a tool all pass through: the engine calls that tool.
  const withTools = await post(
    h.daemon.url,
    JSON.stringify({
      model: 'cs-llm-sim',
      temperature: 0.2,
      top_k: 5,
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }],
      tool_choice: { type: 'function', function: { name: 'lookup' } },
      messages: [{ role: 'user', content: 'hi' }],
    }),
  );
  assert.equal(withTools.status, 200);
  assert.equal(
    (withTools.json as unknown as { choices: Array<{ message: { tool_calls: Array<{ function: { name: string } }> } }> }).choices[0]!
      .message.tool_calls[0]!.function.name,
    'lookup',
  );
});

test('engine overload answers (429 with Retry-After) pass through to the client', async (t) => {
  const h = await startHarness(t, { sim: { fail429Rate: 1 } });
  const res = await post(h.daemon.url, JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] }), {
    'x-session-id': 's429',
  });
  assert.equal(res.status, 429);
  assert.equal(res.headers['retry-after'], '1');
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/s429`)).status, 404);
});

test('an upstream that refuses connections is 502, one that never answers is 504', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-daemon-'));
  const { config, paths } = loadConfig({
    env: { CS_LLM_HOME: home },
    flags: { daemon: { upstream: `http://127.0.0.1:${await freePort()}`, upstreamTimeoutMs: 300 } },
  });
  const daemon = await startDaemon({ config, paths, port: 0 });
  t.after(() => daemon.close());
  const refused = await post(daemon.url, JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }), {
    'x-session-id': 'r',
  });
  assert.equal(refused.status, 502);
  assertOpenAiError(refused.json, 'upstream_unavailable');
  assert.match(refused.json.error.message, /refused/);
  const models = await request(`${daemon.url}/v1/models`);
  assert.equal(models.statusCode, 502);
  await models.body.dump();
  const ready = await request(`${daemon.url}/readyz`);
  assert.equal(ready.statusCode, 503);
  assert.match(await ready.body.text(), /"store":"ok"/);

  const h = await startHarness(t, { sim: { hangRate: 1 }, config: { daemon: { upstreamTimeoutMs: 300 } } });
  const hung = await post(h.daemon.url, JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] }), {
    'x-session-id': 'h',
  });
  assert.equal(hung.status, 504);
  assertOpenAiError(hung.json, 'upstream_timeout');
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/h`)).status, 404);
});

test('health, readiness and the model list answer', async (t) => {
  const h = await startHarness(t);
  assert.deepEqual(await (await fetch(`${h.daemon.url}/healthz`)).json(), { status: 'ok' });
  const ready = await fetch(`${h.daemon.url}/readyz`);
  assert.equal(ready.status, 200);
  assert.equal(((await ready.json()) as { status: string }).status, 'ready');
  const models = await h.client().models.list();
  assert.equal(models.data[0]!.id, 'cs-llm-sim');
});

test('readiness waits for the engine: 503 while it loads, 200 once it serves', async (t) => {
  const h = await startHarness(t, { sim: { loadTimeMs: 1500 } });
  const loading = await fetch(`${h.daemon.url}/readyz`);
  assert.equal(loading.status, 503);
  assert.match(((await loading.json()) as { upstream: string }).upstream, /failed: \/health answered 503/);
  let status = 503;
  while (status !== 200) {
    await new Promise((r) => setTimeout(r, 100));
    const res = await fetch(`${h.daemon.url}/readyz`);
    await res.arrayBuffer();
    status = res.status;
  }
  assert.equal((await fetch(`${h.daemon.url}/healthz`)).status, 200);
});

test('sessions can be listed in pages, read and deleted through the API', async (t) => {
  const h = await startHarness(t);
  for (const id of ['a', 'b', 'c'])
    await h.client({ sessionId: id }).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: `hi ${id}` }] });
  const page1 = (await (await fetch(`${h.daemon.url}/v1/sessions?limit=2`)).json()) as { data: Array<{ id: string }>; nextCursor: string };
  assert.equal(page1.data.length, 2);
  const page2 = (await (await fetch(`${h.daemon.url}/v1/sessions?limit=2&cursor=${page1.nextCursor}`)).json()) as {
    data: Array<{ id: string }>;
    nextCursor: null;
  };
  assert.deepEqual([...page1.data, ...page2.data].map((s) => s.id).sort(), ['a', 'b', 'c']);
  assert.equal(page2.nextCursor, null);
  const one = (await (await fetch(`${h.daemon.url}/v1/sessions/b`)).json()) as Record<string, unknown>;
  for (const key of ['id', 'messages', 'createdAt', 'updatedAt', 'expiresAt']) assert.ok(key in one, key);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/b`, { method: 'DELETE' })).status, 200);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/b`)).status, 404);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/b`, { method: 'DELETE' })).status, 404);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions?limit=0`)).status, 400);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions?cursor=garbage`)).status, 400);
});
