import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { ChatCompletionChunk, ChatCompletionMessageParam, ChatCompletionTool } from 'openai/resources/chat/completions';
import { countTokens } from '../../src/sim/tokenizer.js';
import { rawRequest } from '../helpers/http.js';
import { clientFor, simFor } from './harness.js';

const MODEL = 'sim-model';

const trackOrder: ChatCompletionTool = {
  type: 'function',
  function: {
    name: 'track_order',
    description: 'Look up where an order is',
    parameters: { type: 'object', properties: { order_number: { type: 'string' } }, required: ['order_number'] },
  },
};

async function collect(stream: AsyncIterable<ChatCompletionChunk>): Promise<ChatCompletionChunk[]> {
  const chunks: ChatCompletionChunk[] = [];
  for await (const chunk of stream) chunks.push(chunk);
  return chunks;
}

test("a non-streaming chat completion has OpenAI's shape, the served name and usage from the documented tokenizer", async (t) => {
  const sim = await simFor(t, { servedModelNames: [MODEL] });
  const completion = await clientFor(sim).chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello there' }] });
  assert.match(completion.id, /^chatcmpl-/);
  assert.equal(completion.object, 'chat.completion');
  assert.equal(completion.model, MODEL);
  assert.equal(typeof completion.created, 'number');
  const choice = completion.choices[0]!;
  assert.equal(choice.index, 0);
  assert.equal(choice.finish_reason, 'stop');
  assert.equal(choice.logprobs, null);
  assert.equal(choice.message.role, 'assistant');
  assert.match(choice.message.content!, /^Turn 1\. You said: "Hello there"\./);
  // one role token + "Hello there" (2 tokens)
  assert.deepEqual(completion.usage, {
    prompt_tokens: 3,
    completion_tokens: countTokens(choice.message.content!),
    total_tokens: 3 + countTokens(choice.message.content!),
  });
});

test('a streamed chat completion starts with the role, ends with finish_reason, a usage chunk and [DONE], and says the same as the non-streamed one', async (t) => {
  const sim = await simFor(t, { servedModelNames: [MODEL] });
  const client = clientFor(sim);
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'Tell me something about streaming.' }];
  const whole = await client.chat.completions.create({ model: MODEL, messages });
  const chunks = await collect(
    await client.chat.completions.create({ model: MODEL, messages, stream: true, stream_options: { include_usage: true } }),
  );

  assert.ok(chunks.length > 10, `only ${chunks.length} chunks`);
  for (const chunk of chunks) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.equal(chunk.id, chunks[0]!.id);
    assert.equal(chunk.model, MODEL);
  }
  assert.equal(chunks[0]!.choices[0]!.delta.role, 'assistant');
  const usageChunk = chunks[chunks.length - 1]!;
  assert.deepEqual(usageChunk.choices, []);
  const finishChunk = chunks[chunks.length - 2]!;
  assert.equal(finishChunk.choices[0]!.finish_reason, 'stop');
  const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
  assert.equal(text, whole.choices[0]!.message.content);
  assert.deepEqual(usageChunk.usage, whole.usage);
});

test('without include_usage there is no usage chunk', async (t) => {
  const sim = await simFor(t);
  const chunks = await collect(
    await clientFor(sim).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }], stream: true }),
  );
  assert.ok(chunks.every((c) => c.choices.length === 1 && !c.usage));
});

test('max_tokens and max_completion_tokens cut the reply with finish_reason "length"', async (t) => {
  const sim = await simFor(t);
  const client = clientFor(sim);
  const cut = await client.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'count to 100' }],
    max_tokens: 5,
  });
  assert.equal(cut.choices[0]!.finish_reason, 'length');
  assert.equal(cut.choices[0]!.message.content, '1 2 3 4 5');
  assert.equal(cut.usage!.completion_tokens, 5);

  const chunks = await collect(
    await client.chat.completions.create({
      model: 'cs-llm-sim',
      messages: [{ role: 'user', content: 'count to 100' }],
      max_completion_tokens: 3,
      stream: true,
    }),
  );
  assert.equal(chunks.map((c) => c.choices[0]?.delta.content ?? '').join(''), '1 2 3');
  assert.equal(chunks[chunks.length - 1]!.choices[0]!.finish_reason, 'length');
});

test('replies show the whole history reached the engine over three turns', async (t) => {
  const sim = await simFor(t);
  const client = clientFor(sim);
  const history: ChatCompletionMessageParam[] = [];
  const say = async (content: string) => {
    history.push({ role: 'user', content });
    const reply = (await client.chat.completions.create({ model: 'cs-llm-sim', messages: history })).choices[0]!.message.content!;
    history.push({ role: 'assistant', content: reply });
    return reply;
  };
  assert.match(await say('Hi, my name is Ada and I like green tea.'), /^Turn 1\./);
  assert.equal(await say('What is my name?'), 'Your name is Ada.');
  assert.equal(await say('What was my first message?'), 'Your first message was: "Hi, my name is Ada and I like green tea.".');
  assert.match(await say('How many messages have I sent?'), /You have sent 4 messages/);
});

test('an order number with an order tool gets a tool call, and the reply after the tool result uses it', async (t) => {
  const sim = await simFor(t);
  const client = clientFor(sim);
  const messages: ChatCompletionMessageParam[] = [{ role: 'user', content: 'Where is my order 12345?' }];
  const first = await client.chat.completions.create({ model: 'cs-llm-sim', messages, tools: [trackOrder] });
  const choice = first.choices[0]!;
  assert.equal(choice.finish_reason, 'tool_calls');
  assert.equal(choice.message.content, null);
  const call = choice.message.tool_calls![0]!;
  assert.equal(call.type, 'function');
  assert.match(call.id, /^call_/);
  assert.ok(call.type === 'function');
  assert.equal(call.function.name, 'track_order');
  assert.deepEqual(JSON.parse(call.function.arguments), { order_number: '12345' });

  messages.push(choice.message, {
    role: 'tool',
    tool_call_id: call.id,
    content: JSON.stringify({ status: 'in_transit', eta: '2026-12-03' }),
  });
  const second = await client.chat.completions.create({ model: 'cs-llm-sim', messages, tools: [trackOrder] });
  assert.equal(second.choices[0]!.finish_reason, 'stop');
  assert.equal(second.choices[0]!.message.content, 'According to track_order, status is in_transit, eta is 2026-12-03.');
});

test('a streamed tool call arrives as an id/name delta and argument deltas that reassemble into JSON', async (t) => {
  const sim = await simFor(t);
  const chunks = await collect(
    await clientFor(sim).chat.completions.create({
      model: 'cs-llm-sim',
      messages: [{ role: 'user', content: 'Status of order #55512, please' }],
      tools: [trackOrder],
      stream: true,
      stream_options: { include_usage: true },
    }),
  );
  const toolDeltas = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
  assert.ok(toolDeltas.length >= 4, `only ${toolDeltas.length} tool-call deltas`);
  const [head, ...rest] = toolDeltas;
  assert.equal(head!.index, 0);
  assert.match(head!.id!, /^call_/);
  assert.equal(head!.type, 'function');
  assert.equal(head!.function!.name, 'track_order');
  assert.equal(head!.function!.arguments, '');
  assert.ok(rest.every((d) => d.index === 0 && d.id === undefined && d.function?.name === undefined));
  const args = rest.map((d) => d.function!.arguments).join('');
  assert.deepEqual(JSON.parse(args), { order_number: '55512' });
  const finish = chunks.find((c) => c.choices[0]?.finish_reason)!;
  assert.equal(finish.choices[0]!.finish_reason, 'tool_calls');
  assert.ok(chunks[chunks.length - 1]!.usage!.completion_tokens > 0);
});

test('tool_choice "none" turns the tool rule off', async (t) => {
  const sim = await simFor(t);
  const completion = await clientFor(sim).chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'Where is my order 12345?' }],
    tools: [trackOrder],
    tool_choice: 'none',
  });
  assert.equal(completion.choices[0]!.finish_reason, 'stop');
  assert.equal(completion.choices[0]!.message.tool_calls, undefined);
});

test('/v1/models lists the served names as vLLM does, and the legacy completions endpoint answers a one-token probe', async (t) => {
  const sim = await simFor(t, { model: 'Qwen/Qwen2.5-7B-Instruct-AWQ', servedModelNames: ['qwen7', 'default'], maxModelLen: 4096 });
  const client = clientFor(sim);
  const models = [];
  for await (const model of client.models.list()) models.push(model);
  assert.deepEqual(
    models.map((m) => m.id),
    ['qwen7', 'default'],
  );
  assert.equal(models[0]!.owned_by, 'vllm');
  assert.equal((models[0] as unknown as { max_model_len: number }).max_model_len, 4096);

  const probe = await client.completions.create({ model: 'qwen7', prompt: 'Hello', max_tokens: 1 });
  assert.equal(probe.object, 'text_completion');
  assert.equal(probe.choices[0]!.finish_reason, 'length');
  assert.equal(probe.usage!.completion_tokens, 1);
  assert.equal(countTokens(probe.choices[0]!.text), 1);

  let streamed = '';
  for await (const chunk of await client.completions.create({ model: 'default', prompt: 'count to 4', stream: true }))
    streamed += chunk.choices[0]?.text ?? '';
  assert.equal(streamed, ' 1 2 3 4');
});

test('bad requests get OpenAI-style error bodies: 400 naming the param, 404 for an unknown model', async (t) => {
  const sim = await simFor(t, { maxModelLen: 64 });
  const client = clientFor(sim);
  const noMessages = await client.chat.completions.create({ model: 'cs-llm-sim', messages: [] }).catch((err: unknown) => err);
  assert.ok(noMessages instanceof OpenAI.BadRequestError);
  assert.equal(noMessages.status, 400);
  assert.equal(noMessages.param, 'messages');
  assert.equal(noMessages.type, 'BadRequestError');

  const unknownModel = await client.chat.completions
    .create({ model: 'gpt-9', messages: [{ role: 'user', content: 'hi' }] })
    .catch((err: unknown) => err);
  assert.ok(unknownModel instanceof OpenAI.NotFoundError);
  assert.match(unknownModel.message, /The model `gpt-9` does not exist\./);

  const tooLong = await client.chat.completions
    .create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'word '.repeat(100) }] })
    .catch((err: unknown) => err);
  assert.ok(tooLong instanceof OpenAI.BadRequestError);
  assert.match(tooLong.message, /maximum context length is 64 tokens/);

  const badRole = await client.chat.completions
    .create({ model: 'cs-llm-sim', messages: [{ role: 'robot', content: 'hi' } as unknown as ChatCompletionMessageParam] })
    .catch((err: unknown) => err);
  assert.ok(badRole instanceof OpenAI.BadRequestError);
  assert.equal(badRole.param, 'messages[0].role');
});

test('malformed JSON is a 400, an unknown route a 404 and a wrong method a 405, all with the error shape', async (t) => {
  const sim = await simFor(t);
  const malformed = await fetch(`${sim.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"messages": [',
  });
  assert.equal(malformed.status, 400);
  const body = (await malformed.json()) as { error: Record<string, unknown> };
  assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
  assert.match(String(body.error.message), /not valid JSON/);

  const unknown = await fetch(`${sim.url}/v1/embeddings-nope`);
  assert.equal(unknown.status, 404);
  assert.equal(((await unknown.json()) as { error: { code: number } }).error.code, 404);

  const wrongMethod = await fetch(`${sim.url}/v1/chat/completions`);
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.headers.get('allow'), 'POST');
  assert.equal(((await wrongMethod.json()) as { error: { type: string } }).error.type, 'MethodNotAllowedError');
});

test('with an API key, /v1 needs the bearer token as in vLLM, while /health and /metrics stay open', async (t) => {
  const sim = await simFor(t, { apiKey: 'sekret' });
  const wrong = await clientFor(sim, { apiKey: 'nope' })
    .models.list()
    .catch((err: unknown) => err);
  assert.ok(wrong instanceof OpenAI.AuthenticationError);
  const right = await clientFor(sim, { apiKey: 'sekret' }).chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'hi' }],
  });
  assert.equal(right.choices[0]!.finish_reason, 'stop');
  // vLLM's middleware answers before routing: an unknown /v1 path or a wrong method is a 401 too, with its exact body.
  for (const [method, path] of [
    ['POST', '/v1/chat/completions'],
    ['GET', '/v1/nope'],
    ['GET', '/v1/chat/completions'],
  ] as const) {
    const refused = await rawRequest(sim.url, { method, path, headers: { authorization: 'Bearer nope' } });
    assert.equal(refused.status, 401, `${method} ${path}`);
    assert.deepEqual(JSON.parse(refused.text), { error: 'Unauthorized' });
  }
  assert.equal((await rawRequest(sim.url, { path: '/v1/models', headers: { authorization: 'bearer sekret' } })).status, 200);
  assert.equal((await fetch(`${sim.url}/health`)).status, 200);
  assert.equal((await fetch(`${sim.url}/metrics`)).status, 200);
});

test('a Host that is not loopback or the engine own name gets 403 on every route, key or not (DNS rebinding)', async (t) => {
  const sim = await simFor(t, { apiKey: 'sekret', engineHostname: 'cs-llm-engine-sim' });
  const auth = { authorization: 'Bearer sekret' };
  for (const path of ['/health', '/metrics', '/v1/models']) {
    const refused = await rawRequest(sim.url, { path, headers: { host: `evil.example:${sim.port}`, ...auth } });
    assert.equal(refused.status, 403, path);
    const body = JSON.parse(refused.text) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(body.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(body.error.code, 403);
  }
  for (const host of [`localhost:${sim.port}`, `[::1]:${sim.port}`, `cs-llm-engine-sim:8000`])
    assert.equal((await rawRequest(sim.url, { path: '/v1/models', headers: { host, ...auth } })).status, 200, host);
});

test("the openai SDK's own stream helper assembles the streamed tool call and the usage", async (t) => {
  const sim = await simFor(t);
  const runner = clientFor(sim).chat.completions.stream({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'Track order number 424242 for me' }],
    tools: [trackOrder],
    stream_options: { include_usage: true },
  });
  const final = await runner.finalChatCompletion();
  const call = final.choices[0]!.message.tool_calls![0]!;
  assert.ok(call.type === 'function');
  assert.equal(call.function.name, 'track_order');
  assert.deepEqual(JSON.parse(call.function.arguments), { order_number: '424242' });
  assert.equal(final.choices[0]!.finish_reason, 'tool_calls');
  assert.ok(final.usage!.prompt_tokens > 0);
});

test('a stop string ends the reply before it, with finish_reason "stop"', async (t) => {
  const sim = await simFor(t);
  const completion = await clientFor(sim).chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'count to 10' }],
    stop: [' 6', ' 9'],
  });
  assert.equal(completion.choices[0]!.message.content, '1 2 3 4 5');
  assert.equal(completion.choices[0]!.finish_reason, 'stop');
  assert.equal(completion.usage!.completion_tokens, 5);
});
