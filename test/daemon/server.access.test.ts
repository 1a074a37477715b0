import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import OpenAI from 'openai';
import { loadConfig } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';
import { startDaemon } from '../../src/daemon/server.js';
import { openStore } from '../../src/store/store.js';
import { startHarness, text } from './harness.js';

test('once a key exists every route needs it, and a valid key works through the openai client', async (t) => {
  const h = await startHarness(t);
  assert.equal((await fetch(`${h.daemon.url}/healthz`)).status, 200, 'no keys yet: loopback is open');
  const { key } = await h.daemon.store.keys.create('frontend', Date.now());
  for (const [method, path] of [
    ['GET', '/healthz'],
    ['GET', '/readyz'],
    ['GET', '/v1/models'],
    ['GET', '/v1/sessions'],
    ['POST', '/v1/chat/completions'],
  ] as const) {
    const res = await fetch(`${h.daemon.url}${path}`, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
    assert.equal(res.status, 401, `${method} ${path}`);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_api_key');
  }
  await assert.rejects(
    h
      .client({ apiKey: 'csk_wrongwrongwrongwrong' })
      .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] }),
    (err: { status?: number }) => err.status === 401,
  );
  const reply = await h
    .client({ apiKey: key, sessionId: 'k' })
    .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] });
  assert.match(text(reply), /Turn 1/);
});

test("the client's key is never forwarded: the engine gets the daemon's own upstream key", async (t) => {
  const h = await startHarness(t, { sim: { apiKey: 'engine-secret' }, config: { daemon: { upstreamApiKey: 'engine-secret' } } });
  const { key } = await h.daemon.store.keys.create('app', Date.now());
  const reply = await h
    .client({ apiKey: key })
    .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] });
  assert.match(text(reply), /Turn 1/);

  const without = await startHarness(t, { sim: { apiKey: 'engine-secret' } });
  // Even a client that sends the engine's key gets no further: the daemon drops client Authorization.
  await assert.rejects(
    without
      .client({ apiKey: 'engine-secret' })
      .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] }),
    (err: { status?: number }) => err.status === 401,
  );
});

test('binding to a non-loopback address without keys is refused; with a key, requests need it', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-daemon-'));
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home } });
  await assert.rejects(startDaemon({ config, paths, host: '0.0.0.0', port: 0 }), (err: unknown) => {
    assert.ok(err instanceof ConfigError);
    assert.match(err.message, /refusing to listen on 0\.0\.0\.0 without API keys/);
    assert.match(err.next ?? '', /cs-llm keys create/);
    return true;
  });
  const store = await openStore({ file: paths.dbFile });
  const { key } = await store.keys.create('lan', Date.now());
  await store.close();
  const daemon = await startDaemon({ config, paths, host: '0.0.0.0', port: 0 });
  t.after(() => daemon.close());
  assert.equal((await fetch(`${daemon.url}/healthz`)).status, 401);
  assert.equal((await fetch(`${daemon.url}/healthz`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
});

test('a Host header outside the allowlist is 403 (DNS rebinding), loopback names and configured names pass', async (t) => {
  const h = await startHarness(t, { config: { daemon: { allowedHosts: ['chat.internal'] } } });
  const port = h.daemon.port;
  const status = async (host: string) => {
    const res = await request(`${h.daemon.url}/healthz`, { headers: { host } });
    await res.body.dump();
    return res.statusCode;
  };
  assert.equal(await status('evil.example'), 403);
  assert.equal(await status(`attacker.example:${port}`), 403);
  assert.equal(await status(`localhost:${port}`), 200);
  assert.equal(await status(`127.0.0.1:${port}`), 200);
  assert.equal(await status(`[::1]:${port}`), 200);
  assert.equal(await status(`chat.internal:${port}`), 200);
  assert.equal(await status('CHAT.INTERNAL'), 200);
  const res = await request(`${h.daemon.url}/v1/models`, { headers: { host: 'evil.example' } });
  assert.equal(((await res.body.json()) as { error: { code: string } }).error.code, 'host_not_allowed');
});

test('the openai client sees the same 401 shape OpenAI gives', async (t) => {
  const h = await startHarness(t);
  await h.daemon.store.keys.create('x', Date.now());
  const client = new OpenAI({ baseURL: `${h.daemon.url}/v1`, apiKey: 'nope', maxRetries: 0 });
  await assert.rejects(client.models.list(), (err: InstanceType<typeof OpenAI.AuthenticationError>) => {
    assert.ok(err instanceof OpenAI.AuthenticationError);
    assert.equal(err.code, 'invalid_api_key');
    return true;
  });
});

test('browser pages from other sites are refused: a foreign Origin is 403, a non-JSON post is 415', async (t) => {
  const h = await startHarness(t);
  const body = JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] });
  const foreign = await request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', origin: 'https://evil.example' },
    body,
  });
  assert.equal(foreign.statusCode, 403);
  assert.equal(((await foreign.body.json()) as { error: { code: string } }).error.code, 'origin_not_allowed');
  const textPlain = await request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'text/plain' },
    body,
  });
  assert.equal(textPlain.statusCode, 415);
  assert.equal(((await textPlain.body.json()) as { error: { code: string } }).error.code, 'unsupported_media_type');
  const local = await request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', origin: `http://localhost:${h.daemon.port}` },
    body,
  });
  assert.equal(local.statusCode, 200);
  await local.body.dump();
  // A page on another port of this machine is another site: the port counts, as does the scheme.
  for (const origin of [`http://localhost:${h.daemon.port + 1}`, 'http://localhost', `https://localhost:${h.daemon.port}`]) {
    const otherPort = await request(`${h.daemon.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin },
      body,
    });
    assert.equal(otherPort.statusCode, 403, origin);
    assert.equal(((await otherPort.body.json()) as { error: { code: string } }).error.code, 'origin_not_allowed');
  }
  assert.equal(h.sim.stats().requests, 1);
});
