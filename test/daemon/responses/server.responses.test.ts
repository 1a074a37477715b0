import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { startHarness } from '../harness.js';

const MODEL = 'cs-llm-sim';

test('responses chain through previous_response_id with the real openai client, and the engine gets the history', async (t) => {
  const h = await startHarness(t);
  const client = h.client();
  const first = await client.responses.create({ model: MODEL, input: 'Hello, my name is Mei.' });
  // A response's id names its turn and its session: a new chain's first.
  assert.match(first.id, /^resp_1_chain_[0-9a-f]{32}$/);
  assert.equal(first.object, 'response');
  assert.equal(first.status, 'completed');
  assert.equal(first.previous_response_id, null);
  assert.equal(first.output[0]?.type, 'message');
  assert.ok(first.output_text.length > 0);
  assert.ok((first.usage?.input_tokens ?? 0) > 0 && (first.usage?.output_tokens ?? 0) > 0);

  const second = await client.responses.create({
    model: MODEL,
    previous_response_id: first.id,
    instructions: 'Answer briefly.',
    input: 'What is my name?',
  });
  assert.equal(second.output_text, 'Your name is Mei.');
  assert.equal(second.previous_response_id, first.id);
  assert.equal(second.id, first.id.replace('resp_1_', 'resp_2_'));
  assert.equal(second.instructions, 'Answer briefly.');

  // instructions are not carried: the third turn's engine request has no trace of them.
  const third = await client.responses.create({ model: MODEL, previous_response_id: second.id, input: 'What is your system prompt?' });
  assert.doesNotMatch(third.output_text, /Answer briefly/);
  const fourth = await client.responses.create({ model: MODEL, previous_response_id: third.id, input: 'What was my first message?' });
  assert.equal(fourth.output_text, 'Your first message was: "Hello, my name is Mei.".');
});

test('continuing an earlier response branches: the branch sees its parent up to that response, not what came after', async (t) => {
  const h = await startHarness(t);
  const client = h.client();
  const a = await client.responses.create({ model: MODEL, input: 'my name is Ada' });
  await client.responses.create({ model: MODEL, previous_response_id: a.id, input: 'my name is Bob' });
  const branch = await client.responses.create({ model: MODEL, previous_response_id: a.id, input: 'What is my name?' });
  assert.match(branch.id, /^resp_1_chain_/, 'a branch is a chain of its own');
  assert.equal(branch.output_text, 'Your name is Ada.');
  const next = await client.responses.create({ model: MODEL, previous_response_id: branch.id, input: 'how many messages have I sent?' });
  assert.match(next.output_text, /You have sent 3 messages/);
});

test('function tools come back as function_call items and their outputs continue the chain', async (t) => {
  const h = await startHarness(t);
  const client = h.client();
  const tools: OpenAI.Responses.Tool[] = [
    {
      type: 'function',
      name: 'track_order',
      description: 'Where an order is',
      parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
      strict: false,
    },
  ];
  const first = await client.responses.create({ model: MODEL, input: 'Where is order 12345?', tools });
  const call = first.output.find((i) => i.type === 'function_call');
  assert.ok(call && call.type === 'function_call');
  assert.equal(call.name, 'track_order');
  assert.deepEqual(JSON.parse(call.arguments), { order_id: '12345' });
  assert.match(call.call_id, /^call_/);
  const second = await client.responses.create({
    model: MODEL,
    previous_response_id: first.id,
    tools,
    input: [{ type: 'function_call_output', call_id: call.call_id, output: '{"status":"shipped"}' }],
  });
  assert.equal(second.output_text, 'According to track_order, status is shipped.');
});

test('errors in OpenAI shape: unknown previous response 404, both previous and conversation 400, store false not continuable', async (t) => {
  const h = await startHarness(t);
  const client = h.client();
  await assert.rejects(client.responses.create({ model: MODEL, input: 'hi', previous_response_id: 'resp_nope' }), (err: unknown) => {
    assert.ok(err instanceof OpenAI.NotFoundError);
    assert.equal((err.error as { code?: string }).code, 'previous_response_not_found');
    return true;
  });
  await assert.rejects(
    client.responses.create({ model: MODEL, input: 'hi', previous_response_id: 'resp_x', conversation: 'conv_y' }),
    (err: unknown) => {
      assert.ok(err instanceof OpenAI.BadRequestError);
      return true;
    },
  );
  const unstored = await client.responses.create({ model: MODEL, input: 'my name is Zoe', store: false });
  assert.equal((unstored as unknown as { store: boolean }).store, false);
  await assert.rejects(
    client.responses.create({ model: MODEL, input: 'What is my name?', previous_response_id: unstored.id }),
    OpenAI.NotFoundError,
  );
  await assert.rejects(client.responses.retrieve(unstored.id), OpenAI.NotFoundError);
  assert.equal(await h.daemon.store.stats.messageCount(), 0);
  // An unstored response answered from a chain: its ids never name what is stored there later.
  const stored = await client.responses.create({ model: MODEL, input: 'my name is Zoe' });
  const aside = await client.responses.create({ model: MODEL, previous_response_id: stored.id, input: 'What is my name?', store: false });
  assert.equal(aside.output_text, 'Your name is Zoe.');
  const next = await client.responses.create({ model: MODEL, previous_response_id: stored.id, input: 'hello again' });
  assert.notEqual(aside.id, next.id);
  assert.notEqual(aside.output[0]!.id, next.output[0]!.id);
  await assert.rejects(client.responses.retrieve(aside.id), OpenAI.NotFoundError);
});

test('item_reference resends an earlier item by its id', async (t) => {
  const h = await startHarness(t);
  const client = h.client();
  const first = await client.responses.create({ model: MODEL, input: 'my name is Kai' });
  const reply = first.output[0]!;
  const again = await client.responses.create({
    model: MODEL,
    input: [
      { role: 'user', content: 'my name is Kai' },
      { type: 'item_reference', id: reply.id! },
      { role: 'user', content: 'What is my name?' },
    ],
  });
  assert.equal(again.output_text, 'Your name is Kai.');
  await assert.rejects(
    client.responses.create({ model: MODEL, input: [{ type: 'item_reference', id: 'msg_0_resp_none' }] }),
    OpenAI.NotFoundError,
  );
});

test("a profile's server-side tools run inside the response's turn: the client sees only the answer, the history keeps call and result", async (t) => {
  const { createServer } = await import('node:http');
  const paths: string[] = [];
  const tools = createServer((req, res) => {
    paths.push(req.url ?? '');
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"in transit"}');
  });
  await new Promise<void>((resolve) => tools.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => tools.close(() => resolve())));
  const url = `http://127.0.0.1:${(tools.address() as { port: number }).port}`;
  const tool = {
    name: 'get_logistics',
    description: 'Where an order is',
    parameters: { type: 'object', properties: { order_id: { type: 'string' } }, required: ['order_id'] },
    http: { method: 'GET', url: `${url}/logistics/{order_id}` },
  };
  const h = await startHarness(t, { config: { daemon: { tools: [tool] }, profiles: { default: { tools: ['get_logistics'] } } } });
  const client = h.client();
  const first = await client.responses.create({ model: MODEL, input: 'Where is my order 12345?' });
  assert.deepEqual(
    first.output.map((i) => i.type),
    ['message'],
  );
  assert.equal(first.output_text, 'According to get_logistics, status is in transit.');
  assert.deepEqual(paths, ['/logistics/12345']);
  const streamed = await client.responses
    .stream({ model: MODEL, previous_response_id: first.id, input: 'Where is order 777777?' })
    .finalResponse();
  assert.equal(streamed.output_text, 'According to get_logistics, status is in transit.');
  const items = await client.conversations.items.list(first.id.replace(/^resp_1_/, ''), { order: 'asc' });
  assert.deepEqual(
    items.data.map((i) => i.type),
    ['message', 'function_call', 'function_call_output', 'message', 'message', 'function_call', 'function_call_output', 'message'],
  );
  const again = await client.responses.retrieve(streamed.id);
  assert.deepEqual(
    again.output.map((i) => i.id),
    streamed.output.map((i) => i.id),
  );
  assert.equal(again.output_text, streamed.output_text);
});
