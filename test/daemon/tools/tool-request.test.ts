import assert from 'node:assert/strict';
import { test } from 'node:test';
import { expandEnv, ToolArgumentError, toolRequest, urlTemplateProblems } from '../../../src/daemon/tools/tool-request.js';

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

test('inside a declared object or array only declared names go out, through $ref and anyOf; an opened or free-form object goes as sent', () => {
  const parameters = {
    type: 'object',
    $defs: { address: { type: 'object', properties: { city: { type: 'string' }, street: { type: 'string' } } } },
    properties: {
      order: {
        type: 'object',
        properties: {
          id: { type: 'string' },
          shipTo: { $ref: '#/$defs/address' },
          lines: { type: 'array', items: { type: 'object', properties: { sku: { type: 'string' } } } },
        },
        anyOf: [{ properties: { email: { type: 'string' } } }, { properties: { phone: { type: 'string' } } }],
        patternProperties: { '^x-': { type: 'string' } },
      },
      labels: { type: 'object', properties: { a: { type: 'string' } }, additionalProperties: { type: 'object', properties: { v: {} } } },
      metadata: { type: 'object' },
    },
  };
  const tool = {
    name: 'create_ticket',
    description: '',
    parameters,
    http: { method: 'POST' as const, url: 'http://127.0.0.1:9/tickets', headers: {}, timeoutMs: 15000 },
  };
  const args = {
    order: {
      id: 'A-1',
      admin: true,
      email: 'a@example.com',
      phone: '1',
      'x-trace': 't',
      shipTo: { city: '上海', street: '1', internal_flag: true },
      lines: [{ sku: 's1', price_override: 0 }, { sku: 's2' }],
    },
    labels: { a: 'x', free: { v: 1, w: 2 } },
    metadata: { anything: { goes: true } },
    customer_id: '999',
  };
  // As JSON.parse gives it: an own "__proto__" key in an opened object stays a key, nothing is polluted.
  args.labels = JSON.parse('{"a": "x", "free": {"v": 1, "w": 2}, "__proto__": {"v": 3}}') as typeof args.labels;
  const body = JSON.parse(toolRequest(tool, args, {}).body!);
  assert.deepEqual(body, {
    order: {
      id: 'A-1',
      email: 'a@example.com',
      phone: '1',
      'x-trace': 't',
      shipTo: { city: '上海', street: '1' },
      lines: [{ sku: 's1' }, { sku: 's2' }],
    },
    labels: JSON.parse('{"a": "x", "free": {"v": 1}, "__proto__": {"v": 3}}'),
    metadata: { anything: { goes: true } },
  });
  assert.equal(({} as Record<string, unknown>).v, undefined);
  // A placeholder and a query value are cut the same way before they are encoded.
  const get = toolRequest({ ...tool, http: { ...tool.http, method: 'GET', url: 'http://127.0.0.1:9/t/{order}' } }, args, {});
  assert.ok(!decodeURIComponent(get.url).includes('admin') && !decodeURIComponent(get.url).includes('internal_flag'), get.url);
  assert.ok(decodeURIComponent(get.url).includes('"shipTo":{"city":"上海","street":"1"}'), get.url);
});
