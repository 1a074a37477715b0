import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CircuitBreaker } from '../../src/daemon/tools/breaker.js';
import { expandEnv, ToolArgumentError, toolRequest, urlTemplateProblems } from '../../src/daemon/tools/tool-request.js';
import { schemaProblems, validateJson } from '../../src/daemon/tools/json-schema.js';

const order = {
  type: 'object',
  properties: {
    order_id: { type: 'string', minLength: 4 },
    quantity: { type: 'integer', minimum: 1 },
    express: { type: 'boolean' },
    region: { enum: ['eu', 'cn'] },
    items: { type: 'array', items: { type: 'string' } },
    note: { type: ['string', 'null'] },
  },
  required: ['order_id'],
  additionalProperties: false,
};

test('valid arguments pass the schema subset', () => {
  assert.deepEqual(validateJson({ order_id: '12345', quantity: 2, express: true, region: 'eu', items: ['a'], note: null }, order), []);
  assert.deepEqual(validateJson({ order_id: '12345' }, order), []);
});

test('each broken rule is named with the argument it concerns', () => {
  assert.deepEqual(validateJson({}, order), ['order_id: required']);
  assert.deepEqual(validateJson({ order_id: 12345 }, order), ['order_id: expected string, got number']);
  assert.deepEqual(validateJson({ order_id: '12' }, order), ['order_id: shorter than 4 characters']);
  assert.deepEqual(validateJson({ order_id: '1234', quantity: 1.5 }, order), ['quantity: expected integer, got number']);
  assert.deepEqual(validateJson({ order_id: '1234', quantity: 0 }, order), ['quantity: below the minimum 1']);
  assert.deepEqual(validateJson({ order_id: '1234', region: 'us' }, order), ['region: must be one of "eu", "cn"']);
  assert.deepEqual(validateJson({ order_id: '1234', items: ['a', 2] }, order), ['items[1]: expected string, got number']);
  assert.deepEqual(validateJson({ order_id: '1234', extra: 1 }, order), ['extra: not an allowed property']);
  assert.deepEqual(validateJson([], order), ['(arguments): expected object, got array']);
});

test('schemas outside the subset are reported; unknown keywords are ignored', () => {
  assert.deepEqual(schemaProblems(order), []);
  assert.deepEqual(schemaProblems({ type: 'object', properties: { a: { type: 'text' } } }), [
    'parameters.properties.a.type: unknown type "text"',
  ]);
  assert.deepEqual(schemaProblems({ type: 'object', required: 'a' }), ['parameters.required must be a list of property names']);
  assert.deepEqual(schemaProblems({ type: 'string', pattern: '^[0-9]+$' }), []);
});

test('the breaker opens after N failures, lets one trial through after the cool-down, and closes on its success', () => {
  let now = 0;
  const b = new CircuitBreaker(3, 1000, () => now);
  for (let i = 0; i < 3; i++) {
    assert.equal(b.tryAcquire(), true);
    b.failure();
  }
  assert.equal(b.state, 'open');
  assert.equal(b.tryAcquire(), false);
  now = 1000;
  assert.equal(b.state, 'half-open');
  assert.equal(b.tryAcquire(), true);
  assert.equal(b.tryAcquire(), false, 'one trial at a time');
  b.failure();
  assert.equal(b.state, 'open', 'a failed trial opens it again');
  now = 2000;
  assert.equal(b.tryAcquire(), true);
  b.success();
  assert.equal(b.state, 'closed');
});

test('a half-open trial abandoned (its client went away) lets the next trial through, without a verdict', () => {
  let now = 0;
  const b = new CircuitBreaker(1, 1000, () => now);
  b.failure();
  now = 1000;
  assert.equal(b.tryAcquire(), true);
  b.abandon();
  assert.equal(b.state, 'half-open');
  assert.equal(b.tryAcquire(), true);
});

test('a tool call becomes a URL with encoded arguments, a query or JSON body for the other declared ones (undeclared ones dropped), and headers from the environment', () => {
  const tool = {
    name: 'get_logistics',
    description: '',
    parameters: { type: 'object', properties: { order_id: { type: 'string' }, lang: { type: 'string' } } },
    http: {
      method: 'GET' as const,
      url: 'http://127.0.0.1:9/orders/{order_id}/logistics',
      headers: { Authorization: 'Bearer ${TOKEN}' },
      timeoutMs: 15000,
    },
  };
  const get = toolRequest(tool, { order_id: 'A/1 2', lang: 'en', customer_id: '999', admin: true }, { TOKEN: 't0k' });
  assert.equal(get.url, 'http://127.0.0.1:9/orders/A%2F1%202/logistics?lang=en');
  assert.equal(get.headers.authorization, 'Bearer t0k');
  assert.equal(get.body, null);
  const post = toolRequest({ ...tool, http: { ...tool.http, method: 'POST' } }, { order_id: '7', lang: 'en', admin: true }, { TOKEN: 't' });
  assert.deepEqual(JSON.parse(post.body!), { order_id: '7', lang: 'en' });
  assert.throws(() => expandEnv('${MISSING_VAR}', {}), /MISSING_VAR is not set/);
});

const orders = {
  name: 'get_logistics',
  description: '',
  parameters: { type: 'object', properties: { order_id: { type: 'string' }, lang: { type: 'string' } } },
  http: { method: 'GET' as const, url: 'http://127.0.0.1:9/api/orders/{order_id}/logistics', headers: {}, timeoutMs: 15000 },
};

test('a placeholder value that is "." or "..", or decodes to one, or holds such a segment, is refused; other dots are fine', () => {
  for (const id of ['.', '..', '%2e', '%2E%2e', '%252e%252e', 'a/../b', '..\\x', '../', '%2e%2e%2fadmin', '%25252525252e']) {
    assert.throws(() => toolRequest(orders, { order_id: id }, {}), ToolArgumentError, `order_id ${JSON.stringify(id)}`);
  }
  for (const id of ['...', 'a.b', 'v1.2', '.hidden', 'A/1 2']) {
    const url = new URL(toolRequest(orders, { order_id: id }, {}).url);
    assert.equal(url.origin, 'http://127.0.0.1:9');
    assert.equal(url.pathname, `/api/orders/${encodeURIComponent(id)}/logistics`);
  }
  assert.throws(() => toolRequest(orders, { order_id: '' }, {}), /order_id: needed for the tool's URL, must not be empty/);
  assert.throws(() => toolRequest(orders, {}, {}), /order_id: needed/);
  const query = { ...orders, http: { ...orders.http, url: 'http://127.0.0.1:9/api/logistics?order={order_id}' } };
  assert.throws(() => toolRequest(query, { order_id: '..' }, {}), ToolArgumentError);
  assert.equal(toolRequest(query, { order_id: '7&admin=1' }, {}).url, 'http://127.0.0.1:9/api/logistics?order=7%26admin%3D1');
});

test('a URL template with a placeholder in its scheme or host, or naming no declared property, is a config problem', () => {
  assert.deepEqual(urlTemplateProblems(orders), []);
  const at = (url: string) => urlTemplateProblems({ ...orders, http: { ...orders.http, url } });
  assert.deepEqual(at('http://{order_id}/x'), ['http.url: {order_id} may stand in the path or the query only, not in the scheme or host']);
  assert.deepEqual(at('http://127.0.0.1:{order_id}/x'), [
    'http.url: {order_id} may stand in the path or the query only, not in the scheme or host',
  ]);
  assert.deepEqual(at('http://127.0.0.1:9/x/{customer}'), ['http.url: {customer} is not a property in parameters.properties']);
  assert.deepEqual(at('file:///etc/{order_id}'), ['http.url must start with http:// or https://']);
  assert.deepEqual(at('not a url'), ['http.url is not a URL: not a url']);
});
