import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { request } from 'undici';
import { startHarness, text } from '../harness.js';
import { startScriptedModel } from '../scripted-model.js';

/** A real HTTP tool endpoint on 127.0.0.1: /logistics/:id answers, /hang never does, /flaky fails while `failing`. */
interface ToolServer {
  url: string;
  calls: Array<{ path: string; auth: string | undefined }>;
  failing: boolean;
  /** /hang requests whose connection the caller closed. */
  hangsClosed: number;
  /** /big replies (64 MiB, sent as fast as the caller reads) once their connection closed: bytes written, and whether all were. */
  bigReplies: Array<{ written: number; finished: boolean }>;
  /** POST /address/:id bodies, as received. */
  posted: Array<{ path: string; body: string }>;
}

async function startToolServer(t: { after(fn: () => Promise<void> | void): void }): Promise<ToolServer> {
  const state: ToolServer = { url: '', calls: [], failing: true, hangsClosed: 0, bigReplies: [], posted: [] };
  const hung: ServerResponse[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = req.url ?? '/';
    state.calls.push({ path, auth: req.headers.authorization });
    const logistics = /^\/logistics\/([^/?]+)/.exec(path);
    if (logistics) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ order_id: decodeURIComponent(logistics[1]!), status: 'in transit', carrier: 'SF Express' }));
    } else if (path.startsWith('/address')) {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        state.posted.push({ path, body });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"saved":true}');
      });
    } else if (path.startsWith('/hang')) {
      hung.push(res);
      res.on('close', () => state.hangsClosed++);
    } else if (path.startsWith('/big')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(64 * 1024, 'x');
      let written = 0;
      const pump = (): void => {
        while (written < 64 * 1024 * 1024) {
          written += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      res.on('close', () => state.bigReplies.push({ written, finished: res.writableFinished }));
      pump();
    } else if (path.startsWith('/flaky')) {
      if (state.failing) {
        res.writeHead(500).end('down');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"status":"delivered"}');
      }
    } else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  t.after(async () => {
    for (const res of hung) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return state;
}

function logisticsTool(url: string, extra: Record<string, unknown> = {}) {
  return {
    name: 'get_logistics',
    description: 'Where an order is: carrier and status',
    parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'], additionalProperties: false },
    http: { method: 'GET', url: `${url}/logistics/{order_id}`, headers: { authorization: 'Bearer ${CS_LLM_TEST_TOOL_TOKEN}' } },
    ...extra,
  };
}

interface Stored {
  messages: Array<{
    role: string;
    content: string | null;
    tool_calls?: Array<{ id: string; function: { name: string; arguments: string } }>;
    tool_call_id?: string;
  }>;
}

async function stored(url: string, id: string): Promise<Stored> {
  return (await (await fetch(`${url}/v1/sessions/${id}`)).json()) as Stored;
}

/** Resolves once `done()` holds, checking every 20 ms; fails after `ms` with `message`. */
async function eventually(done: () => boolean, ms: number, message: string): Promise<void> {
  for (const end = Date.now() + ms; !done(); await new Promise((r) => setTimeout(r, 20))) {
    if (Date.now() > end) assert.fail(message);
  }
}

/** The assistant's text in a raw reply body, a JSON completion or an SSE stream. */
function replyText(body: string): string {
  if (!body.startsWith('data:'))
    return (JSON.parse(body) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content;
  let content = '';
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const chunk = JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { content?: string } }> };
    content += chunk.choices?.[0]?.delta?.content ?? '';
  }
  return content;
}

process.env.CS_LLM_TEST_TOOL_TOKEN = 'tool-secret';

test('a profile with tools: the daemon runs the tool call and the client gets only the final reply; history keeps call and result', async (t) => {
  const tools = await startToolServer(t);
  const h = await startHarness(t, {
    config: { daemon: { tools: [logisticsTool(tools.url)] }, profiles: { default: { tools: ['get_logistics'] } } },
  });
  const reply = await h
    .client({ sessionId: 'tools-1' })
    .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'Where is my order 12345?' }] });
  assert.equal(reply.choices[0]?.message.tool_calls, undefined, 'the client never sees the server-side tool call');
  assert.match(text(reply), /According to get_logistics, order_id is 12345, status is in transit, carrier is SF Express/);
  assert.deepEqual(tools.calls, [{ path: '/logistics/12345', auth: 'Bearer tool-secret' }]);

  const history = await stored(h.daemon.url, 'tools-1');
  assert.deepEqual(
    history.messages.map((m) => m.role),
    ['user', 'assistant', 'tool', 'assistant'],
  );
  const call = history.messages[1]!.tool_calls![0]!;
  assert.equal(call.function.name, 'get_logistics');
  assert.deepEqual(JSON.parse(call.function.arguments), { order_id: '12345' });
  assert.equal(history.messages[2]!.tool_call_id, call.id);
  assert.deepEqual(JSON.parse(history.messages[2]!.content!), { order_id: '12345', status: 'in transit', carrier: 'SF Express' });
  assert.equal(history.messages[3]!.content, text(reply));

  const metrics = await (await fetch(`${h.daemon.url}/metrics`)).text();
  assert.match(metrics, /cs_llm_tool_calls_total\{tool="get_logistics",outcome="ok"\} 1/);
});

test('streamed: the tool round is consumed inside the daemon and only the answer streams, committed before [DONE]', async (t) => {
  const tools = await startToolServer(t);
  const h = await startHarness(t, {
    config: { daemon: { tools: [logisticsTool(tools.url)] }, profiles: { default: { tools: ['get_logistics'] } } },
  });
  const stream = await h.client({ sessionId: 'tools-stream' }).chat.completions.create({
    model: 'cs-llm-sim',
    stream: true,
    messages: [{ role: 'user', content: 'Where is my order #98765?' }],
  });
  let content = '';
  let chunks = 0;
  for await (const chunk of stream) {
    assert.equal(chunk.choices[0]?.delta.tool_calls, undefined, 'no tool-call delta reaches the client');
    assert.notEqual(chunk.choices[0]?.finish_reason, 'tool_calls');
    content += chunk.choices[0]?.delta.content ?? '';
    chunks++;
  }
  assert.ok(chunks > 3, `the answer arrives in pieces, got ${chunks}`);
  assert.match(content, /According to get_logistics, order_id is 98765, status is in transit/);
  const history = await stored(h.daemon.url, 'tools-stream');
  assert.deepEqual(
    history.messages.map((m) => m.role),
    ['user', 'assistant', 'tool', 'assistant'],
  );
  assert.equal(history.messages[3]!.content, content);
});

test('arguments that break the schema are not sent to the tool: the model gets an error result it can explain', async (t) => {
  const tools = await startToolServer(t);
  // The simulator fills only the first property, so the required "region" is missing.
  const tool = logisticsTool(tools.url, {
    parameters: {
      type: 'object',
      properties: { order_id: { type: 'string' }, region: { type: 'string', enum: ['eu', 'cn'] } },
      required: ['order_id', 'region'],
    },
  });
  const h = await startHarness(t, { config: { daemon: { tools: [tool] }, profiles: { default: { tools: ['get_logistics'] } } } });
  const reply = await h
    .client({ sessionId: 'tools-invalid' })
    .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'order 55555 please' }] });
  assert.match(text(reply), /According to get_logistics, error is invalid arguments for get_logistics: region: required/);
  assert.deepEqual(tools.calls, [], 'the endpoint was not called');
  const history = await stored(h.daemon.url, 'tools-invalid');
  assert.match(history.messages[2]!.content!, /region: required/);
});

test('pattern and format are enforced: arguments that break them are not sent, and the model is told what to fix', async (t) => {
  const tools = await startToolServer(t);
  for (const [session, order_id, problem] of [
    ['tools-pattern', { type: 'string', pattern: '^[A-Z]{2}-[0-9]+$' }, 'order_id: must match pattern "^[A-Z]{2}-[0-9]+$"'],
    ['tools-format', { type: 'string', format: 'uuid' }, 'order_id: must match format "uuid"'],
  ] as const) {
    const tool = logisticsTool(tools.url, {
      parameters: { type: 'object', properties: { order_id }, required: ['order_id'], additionalProperties: false },
    });
    const h = await startHarness(t, { config: { daemon: { tools: [tool] }, profiles: { default: { tools: ['get_logistics'] } } } });
    const reply = await h
      .client({ sessionId: session })
      .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'where is order 12345?' }] });
    assert.ok(text(reply).includes(`error is invalid arguments for get_logistics: ${problem}`), text(reply));
  }
  assert.deepEqual(tools.calls, [], 'the endpoint was not called');
});

test('a tool that does not answer in time becomes an error result, not a hung request', async (t) => {
  const tools = await startToolServer(t);
  const tool = { ...logisticsTool(tools.url), http: { method: 'GET', url: `${tools.url}/hang/{order_id}`, timeoutMs: 300 } };
  const h = await startHarness(t, { config: { daemon: { tools: [tool] }, profiles: { default: { tools: ['get_logistics'] } } } });
  const reply = await h
    .client({ sessionId: 'tools-timeout' })
    .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'order 4444?' }] });
  assert.match(text(reply), /error is the tool get_logistics did not answer within 300 ms/);
  assert.equal(tools.calls.length, 1);
});

test("a client that goes away stops its turn's tool calls: the tool endpoint sees its request closed and nothing is stored", async (t) => {
  const tools = await startToolServer(t);
  const tool = { ...logisticsTool(tools.url), http: { method: 'GET', url: `${tools.url}/hang/{order_id}`, timeoutMs: 60_000 } };
  const h = await startHarness(t, { config: { daemon: { tools: [tool] }, profiles: { default: { tools: ['get_logistics'] } } } });
  for (const stream of [false, true]) {
    const before = tools.calls.length;
    const client = new AbortController();
    const asked = request(`${h.daemon.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': `gone-${stream}` },
      body: JSON.stringify({ model: 'cs-llm-sim', stream, messages: [{ role: 'user', content: 'where is order 4444?' }] }),
      signal: client.signal,
    }).catch(() => null);
    await eventually(() => tools.calls.length > before, 10_000, 'the tool was never called');
    client.abort();
    await asked;
    // The tool's own timeout is 60 s: only the client's leaving can end the call this soon.
    await eventually(() => tools.hangsClosed > before, 10_000, 'the tool call kept running after the client went away');
    assert.equal((await fetch(`${h.daemon.url}/v1/sessions/gone-${stream}`)).status, 404, 'nothing stored');
  }
  const metrics = await (await fetch(`${h.daemon.url}/metrics`)).text();
  assert.match(metrics, /cs_llm_tool_calls_total\{tool="get_logistics",outcome="aborted"\} 2/);
});

test('a long tool reply is read only up to the 16,000-character cut: the daemon stops reading and closes the connection', async (t) => {
  const tools = await startToolServer(t);
  const tool = { ...logisticsTool(tools.url), http: { method: 'GET', url: `${tools.url}/big/{order_id}` } };
  const h = await startHarness(t, { config: { daemon: { tools: [tool] }, profiles: { default: { tools: ['get_logistics'] } } } });
  const reply = await h
    .client({ sessionId: 'tools-big' })
    .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'where is order 5555?' }] });
  assert.match(text(reply), /According to get_logistics, the result is "x+/);
  const result = (await stored(h.daemon.url, 'tools-big')).messages[2]!.content!;
  assert.equal(result, `${'x'.repeat(16_000)}...(cut)`);
  await eventually(() => tools.bigReplies.length === 1, 10_000, 'the tool connection stayed open');
  assert.equal(
    tools.bigReplies[0]!.finished,
    false,
    `the endpoint could send all ${tools.bigReplies[0]!.written} bytes: the daemon read them all`,
  );
});

test('the breaker opens after repeated failures (the tool is not called), half-opens after the cool-down and closes on success', async (t) => {
  const tools = await startToolServer(t);
  let clock = Date.now();
  const tool = { ...logisticsTool(tools.url), http: { method: 'GET', url: `${tools.url}/flaky/{order_id}` } };
  const h = await startHarness(t, {
    now: () => clock,
    config: {
      daemon: { tools: [tool], toolBreakerFailures: 2, toolBreakerCooldownMs: 30_000 },
      profiles: { default: { tools: ['get_logistics'] } },
    },
  });
  const ask = async (session: string) =>
    text(
      await h
        .client({ sessionId: session })
        .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'order 1001 status?' }] }),
    );

  assert.match(await ask('b1'), /error is the tool get_logistics failed with HTTP 500/);
  assert.match(await ask('b2'), /failed with HTTP 500/);
  assert.equal(tools.calls.length, 2);
  assert.match(await ask('b3'), /get_logistics is unavailable after repeated failures/);
  assert.equal(tools.calls.length, 2, 'an open breaker does not call the endpoint');

  tools.failing = false;
  clock += 30_001;
  assert.match(await ask('b4'), /According to get_logistics, status is delivered/);
  assert.equal(tools.calls.length, 3);
  assert.match(await ask('b5'), /status is delivered/);
  const metrics = await (await fetch(`${h.daemon.url}/metrics`)).text();
  assert.match(metrics, /cs_llm_tool_calls_total\{tool="get_logistics",outcome="breaker_open"\} 1/);
});

interface ToolDelta {
  index: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

/** The tool-call deltas of a raw SSE body, in order. */
function toolDeltas(body: string): ToolDelta[] {
  const out: ToolDelta[] = [];
  for (const line of body.split('\n')) {
    if (!line.startsWith('data: {')) continue;
    const chunk = JSON.parse(line.slice(6)) as { choices?: Array<{ delta?: { tool_calls?: ToolDelta[] } }> };
    // The call id hashes the conversation, which the session adds its system prompt to: compared apart.
    for (const d of chunk.choices?.[0]?.delta?.tool_calls ?? [])
      out.push({ ...d, ...(d.id !== undefined ? { id: d.id.startsWith('call_') ? 'call_*' : d.id } : {}) });
  }
  return out;
}

test('tools the client declares pass through untouched, streamed argument deltas included, even on a profile with server tools', async (t) => {
  const tools = await startToolServer(t);
  const h = await startHarness(t, {
    config: { daemon: { tools: [logisticsTool(tools.url)] }, profiles: { default: { tools: ['get_logistics'] } } },
  });
  const body = JSON.stringify({
    model: 'cs-llm-sim',
    stream: true,
    messages: [{ role: 'user', content: 'track order 777123 for me' }],
    tools: [
      {
        type: 'function',
        function: { name: 'track_order', parameters: { type: 'object', properties: { order_number: { type: 'string' } } } },
      },
    ],
  });
  const direct = await (
    await request(`${h.sim.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  ).body.text();
  const expected = toolDeltas(direct);
  assert.ok(expected.length > 1, 'the engine streams the arguments in several deltas');

  for (const headers of [{}, { 'x-session-id': 'client-tools' }]) {
    const res = await request(`${h.daemon.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
    });
    assert.equal(res.statusCode, 200);
    const relayed = await res.body.text();
    assert.deepEqual(toolDeltas(relayed), expected, 'the same deltas, in the same pieces');
    const args = toolDeltas(relayed)
      .map((d) => d.function?.arguments ?? '')
      .join('');
    assert.deepEqual(JSON.parse(args), { order_number: '777123' });
  }
  assert.deepEqual(tools.calls, [], 'the server-side tool was not run');
  // The real client reassembles the same call.
  const reply = await h.client().chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'track order 777123 for me' }],
    tools: [
      {
        type: 'function',
        function: { name: 'track_order', parameters: { type: 'object', properties: { order_number: { type: 'string' } } } },
      },
    ],
  });
  const call = reply.choices[0]!.message.tool_calls![0]!;
  assert.equal(call.type === 'function' ? call.function.arguments : '', '{"order_number":"777123"}');
});

test('a model naming a declared tool outside the turn\'s profile gets "there is no tool named X", and that tool is not called', async (t) => {
  const tools = await startToolServer(t);
  const refund = {
    name: 'issue_refund',
    description: 'Refunds an order in full',
    parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'], additionalProperties: false },
    http: { method: 'POST', url: `${tools.url}/refund/{order_id}` },
  };
  const model = await startScriptedModel(t, [{ name: 'issue_refund', arguments: '{"order_id":"12345"}' }]);
  const h = await startHarness(t, {
    config: {
      daemon: { upstream: model.url, tools: [logisticsTool(tools.url), refund] },
      profiles: { default: { tools: ['get_logistics'] }, back_office: { tools: ['issue_refund'] } },
    },
  });
  for (const stream of [false, true]) {
    const res = await request(`${h.daemon.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': `profile-${stream}` },
      body: JSON.stringify({ model: 'cs-llm-sim', stream, messages: [{ role: 'user', content: 'refund order 12345 now' }] }),
    });
    assert.equal(res.statusCode, 200);
    assert.match(replyText(await res.body.text()), /According to issue_refund, error is there is no tool named issue_refund/);
  }
  assert.deepEqual(tools.calls, [], 'the tool of another profile was not called');
  const metrics = await (await fetch(`${h.daemon.url}/metrics`)).text();
  assert.match(metrics, /cs_llm_tool_calls_total\{tool="issue_refund",outcome="unknown_tool"\} 2/);
});

test('a placeholder value that is "." or ".." (or decodes to one) is invalid arguments: the request cannot leave the tool\'s path', async (t) => {
  const tools = await startToolServer(t);
  const tool = logisticsTool(tools.url, {
    http: { method: 'GET', url: `${tools.url}/api/orders/{order_id}/logistics`, headers: {} },
  });
  const model = await startScriptedModel(
    t,
    ['..', '.', '%2e%2e', 'a/../../admin', '12345'].map((id) => ({ name: 'get_logistics', arguments: JSON.stringify({ order_id: id }) })),
  );
  const h = await startHarness(t, {
    config: { daemon: { upstream: model.url, tools: [tool] }, profiles: { default: { tools: ['get_logistics'] } } },
  });
  const reply = await h
    .client({ sessionId: 'tools-dotdot' })
    .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'where is my order?' }] });
  const refused = text(reply).match(/invalid arguments for get_logistics: order_id: "\." and "\.\." are not allowed/g) ?? [];
  assert.equal(refused.length, 4, text(reply));
  assert.deepEqual(
    tools.calls.map((c) => c.path),
    ['/api/orders/12345/logistics'],
    'only the plain order number reached the endpoint',
  );
});

test('arguments the schema does not declare are never sent to the endpoint, in the query or in the body', async (t) => {
  const tools = await startToolServer(t);
  const open = { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] };
  const address = {
    name: 'update_address',
    description: 'Changes the delivery address of an order',
    parameters: { ...open, properties: { order_id: { type: 'string' }, address: { type: 'string' } } },
    http: { method: 'POST', url: `${tools.url}/address/{order_id}` },
  };
  const model = await startScriptedModel(t, [
    { name: 'get_logistics', arguments: '{"order_id":"12345","customer_id":"999","admin":true}' },
    { name: 'update_address', arguments: '{"order_id":"12345","address":"1 Main St","customer_id":"999","admin":true}' },
  ]);
  const h = await startHarness(t, {
    config: {
      daemon: { upstream: model.url, tools: [logisticsTool(tools.url, { parameters: open }), address] },
      profiles: { default: { tools: ['get_logistics', 'update_address'] } },
    },
  });
  const reply = await h
    .client({ sessionId: 'tools-undeclared' })
    .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'move my order' }] });
  assert.match(text(reply), /According to get_logistics, order_id is 12345.*According to update_address, saved is true/);
  assert.deepEqual(tools.calls.map((c) => c.path).sort(), ['/address/12345', '/logistics/12345']);
  assert.deepEqual(JSON.parse(tools.posted[0]!.body), { order_id: '12345', address: '1 Main St' });
});

test('a profile naming an undeclared tool, a schema with a keyword the daemon cannot check, a URL the model could steer, or a header naming an unset variable is refused at start', async (t) => {
  await assert.rejects(
    startHarness(t, { config: { profiles: { default: { tools: ['nope'] } } } }),
    /profiles\.default\.tools names "nope"/,
  );
  const bad = { name: 'x', parameters: { type: 'objekt' }, http: { url: 'http://127.0.0.1:1/x' } };
  await assert.rejects(startHarness(t, { config: { daemon: { tools: [bad] } } }), /unknown type "objekt"/);
  const typo = logisticsTool('http://127.0.0.1:1', {
    parameters: { type: 'object', properties: { order_id: { type: 'string', maxlength: 12 } }, required: ['order_id'] },
  });
  await assert.rejects(
    startHarness(t, { config: { daemon: { tools: [typo] } } }),
    /"get_logistics" has a parameters schema the daemon cannot check: parameters\.properties\.order_id: unknown keyword "maxlength"/,
  );
  const hostFromModel = logisticsTool('http://{order_id}.example');
  await assert.rejects(
    startHarness(t, { config: { daemon: { tools: [hostFromModel] } } }),
    /"get_logistics" has an unusable URL: http\.url: \{order_id\} may stand in the path or the query only/,
  );
  const unsetToken = logisticsTool('http://127.0.0.1:1', {
    http: { url: 'http://127.0.0.1:1/x', headers: { 'X-Token': '${CS_LLM_TEST_UNSET_TOKEN}' } },
  });
  await assert.rejects(
    startHarness(t, { config: { daemon: { tools: [unsetToken] } } }),
    /"get_logistics" header X-Token: environment variable CS_LLM_TEST_UNSET_TOKEN is not set in the daemon's environment/,
  );
});
