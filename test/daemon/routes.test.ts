import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRouter, type Handler } from '../../src/daemon/routes.js';

const a: Handler = () => undefined;
const b: Handler = () => undefined;
const c: Handler = () => undefined;
const route = createRouter([
  { method: 'POST', path: '/v1/chat/completions', handler: a },
  { method: 'GET', path: '/v1/sessions/:id', handler: b },
  { method: 'DELETE', path: '/v1/sessions/:id', handler: c },
]);

test('exact and parameterised paths find their handler and parameters', () => {
  assert.deepEqual(route('POST', '/v1/chat/completions'), { kind: 'found', handler: a, params: {}, route: '/v1/chat/completions' });
  assert.deepEqual(route('POST', '/v1/chat/completions/'), { kind: 'found', handler: a, params: {}, route: '/v1/chat/completions' });
  assert.deepEqual(route('DELETE', '/v1/sessions/abc%3A1'), {
    kind: 'found',
    handler: c,
    params: { id: 'abc:1' },
    route: '/v1/sessions/:id',
  });
});

test('a known path with another method is 405 with the allowed methods; anything else is 404', () => {
  assert.deepEqual(route('GET', '/v1/chat/completions'), { kind: 'method-not-allowed', allow: ['POST'] });
  assert.deepEqual(route('PUT', '/v1/sessions/x'), { kind: 'method-not-allowed', allow: ['GET', 'DELETE'] });
  assert.deepEqual(route('GET', '/v1/sessions/x/y'), { kind: 'not-found' });
  assert.deepEqual(route('GET', '/v1/sessions/%E0%A4%A'), { kind: 'not-found' });
  assert.deepEqual(route('GET', '/nothing'), { kind: 'not-found' });
});
