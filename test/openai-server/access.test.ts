import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createAccessGuard, hostName } from '../../src/openai-server/access.js';

const request = (over: Partial<Parameters<ReturnType<typeof createAccessGuard>>[0]> = {}) => ({
  method: 'GET',
  path: '/v1/models',
  host: '127.0.0.1:8000',
  authorization: undefined,
  ...over,
});

test('loopback Hosts, with or without a port, and the engine own names pass; any other Host gets 403 in the error shape', () => {
  const guard = createAccessGuard({ engineHostname: 'cs-llm-engine-a, Other-Name' }, 'box1');
  for (const host of [
    '127.0.0.1',
    '127.0.0.1:8000',
    'localhost',
    'LOCALHOST:1',
    '[::1]',
    '[::1]:8000',
    'box1:8000',
    'cs-llm-engine-a:8000',
    'other-name',
  ])
    assert.equal(guard(request({ host })), undefined, host);
  for (const host of [
    undefined,
    '',
    'evil.example',
    'evil.example:8000',
    '127.0.0.2',
    '127.0.0.1.nip.io',
    'localhost.',
    '[::2]:8000',
    '::1',
    'a b',
    '127.0.0.1:80:80',
  ]) {
    const refused = guard(request({ host, path: '/health' }));
    assert.equal(refused?.status, 403, String(host));
    const body = refused!.body as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.code, 403);
    assert.equal(body.error.type, 'PermissionDeniedError');
    assert.match(String(body.error.message), /loopback Host/);
  }
});

test('hostName takes the name out of a Host header: lowercase, no port, no IPv6 brackets', () => {
  assert.equal(hostName('LocalHost:8000'), 'localhost');
  assert.equal(hostName('[::1]:8000'), '::1');
  assert.equal(hostName('[::1]'), '::1');
  assert.equal(hostName('::1'), undefined);
  assert.equal(hostName('host:port'), undefined);
});

test('with a key, /v1 needs Bearer <key> as in vLLM (scheme in any case, 401 {"error": "Unauthorized"}); /health, /metrics and OPTIONS stay open', () => {
  const guard = createAccessGuard({ apiKey: 'sekret' }, 'box1');
  const unauthorized = { status: 401, body: { error: 'Unauthorized' } };
  for (const authorization of [
    undefined,
    '',
    'sekret',
    'Bearer',
    'Bearer ',
    'Bearer nope',
    'Basic sekret',
    'Bearer  sekret',
    'Bearer sekret ',
    'Bearer sekretsekret',
  ])
    assert.deepEqual(guard(request({ authorization })), unauthorized, String(authorization));
  for (const path of ['/v1/chat/completions', '/v1', '/v1/nope', '/v1x'])
    assert.deepEqual(guard(request({ path, method: 'POST' })), unauthorized, path);
  for (const authorization of ['Bearer sekret', 'bearer sekret', 'BEARER sekret'])
    assert.equal(guard(request({ authorization })), undefined, authorization);
  for (const path of ['/health', '/metrics', '/ping', '/version']) assert.equal(guard(request({ path })), undefined, path);
  assert.equal(guard(request({ method: 'OPTIONS' })), undefined);
  // The Host check comes first: a wrong Host is refused even with the right key.
  assert.equal(guard(request({ authorization: 'Bearer sekret', host: 'evil.example' }))?.status, 403);
});

test('without a key (none given, or an empty one) /v1 is open, as vLLM without --api-key', () => {
  for (const apiKey of [undefined, ''])
    assert.equal(createAccessGuard({ apiKey }, 'box1')(request({ path: '/v1/chat/completions' })), undefined);
});
