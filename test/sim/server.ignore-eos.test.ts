import { test } from 'node:test';
import assert from 'node:assert/strict';
import type OpenAI from 'openai';
import { parseChatRequest } from '../../src/openai-server/requests.js';
import { countTokens } from '../../src/sim/tokenizer.js';
import { continuedPast, truncateToTokens } from '../../src/sim/wire.js';
import { clientFor, simFor } from './harness.js';

const MODEL = 'sim-model';
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is my name?' }];
/** The request with vLLM's extra field; the openai client sends body fields it does not know as they are. */
type WithIgnoreEos<T> = T & { ignore_eos?: unknown };

test('ignore_eos parses as a boolean (null and absent are false); anything else is a 400 naming the field', () => {
  const parse = (extra: object) => parseChatRequest({ messages: [{ role: 'user', content: 'hi' }], ...extra }, [MODEL]);
  const value = (extra: object) => {
    const parsed = parse(extra);
    assert.ok(parsed.ok);
    return parsed.value.ignoreEos;
  };
  assert.deepEqual(
    [value({}), value({ ignore_eos: null }), value({ ignore_eos: false }), value({ ignore_eos: true })],
    [false, false, false, true],
  );
  for (const bad of ['yes', 1, {}]) {
    const parsed = parse({ ignore_eos: bad });
    assert.ok(!parsed.ok);
    assert.deepEqual(parsed.problem, { status: 400, message: 'ignore_eos must be a boolean.', param: 'ignore_eos' });
  }
});

test('continuedPast repeats a reply until max_tokens cuts it, even when the reply alone is exactly max_tokens long', () => {
  const reply = 'Your name is Ada.';
  assert.equal(countTokens(reply), 5);
  for (const max of [1, 5, 7, 150]) {
    const { pieces, finishReason } = truncateToTokens(continuedPast(reply, max), max);
    assert.equal(pieces.length, max);
    assert.equal(finishReason, 'length');
    assert.ok(reply.startsWith(pieces.join('').slice(0, reply.length)));
  }
  assert.equal(continuedPast(reply, 12), `${reply} ${reply} ${reply}`);
  assert.equal(continuedPast('', 10), '');
});

test('with ignore_eos the simulator answers exactly max_tokens tokens with length, streamed and not; stop strings still end it', async (t) => {
  const sim = await simFor(t, { servedModelNames: [MODEL] });
  const client = clientFor(sim);
  const short = await client.chat.completions.create({
    model: MODEL,
    messages,
    ignore_eos: false,
  } as WithIgnoreEos<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming>);
  assert.equal(short.choices[0]!.finish_reason, 'stop');
  assert.ok(short.usage!.completion_tokens < 150);

  const params: WithIgnoreEos<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {
    model: MODEL,
    messages,
    max_tokens: 150,
    ignore_eos: true,
  };
  const long = await client.chat.completions.create(params);
  assert.equal(long.choices[0]!.finish_reason, 'length');
  assert.equal(long.usage?.completion_tokens, 150);
  const text = long.choices[0]!.message.content!;
  assert.ok(text.startsWith(`${short.choices[0]!.message.content!} `));

  const streamParams: WithIgnoreEos<OpenAI.Chat.ChatCompletionCreateParamsStreaming> = {
    ...params,
    stream: true,
    stream_options: { include_usage: true },
  };
  let streamed = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of await client.chat.completions.create(streamParams)) {
    streamed += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  assert.equal(streamed, text);
  assert.equal(finish, 'length');
  assert.equal(usage?.completion_tokens, 150);

  // A stop string that only the continuation contains (the second "Ada") cuts the reply before it.
  const stopped = await client.chat.completions.create({
    ...params,
    messages: [{ role: 'user', content: 'My name is Ada. What is my name?' }],
    stop: ['is Ada. Your'],
  } as typeof params);
  assert.equal(stopped.choices[0]!.finish_reason, 'stop');
  assert.equal(stopped.choices[0]!.message.content, 'Your name ');

  // The legacy completions endpoint honours it too.
  const completion = await client.completions.create({
    model: MODEL,
    prompt: 'Once upon a time',
    max_tokens: 40,
    ignore_eos: true,
  } as WithIgnoreEos<OpenAI.CompletionCreateParamsNonStreaming>);
  assert.equal(completion.choices[0]!.finish_reason, 'length');
  assert.equal(completion.usage?.completion_tokens, 40);

  const bad = await fetch(`${sim.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages, ignore_eos: 'yes' }),
  });
  assert.equal(bad.status, 400);
  assert.deepEqual(((await bad.json()) as { error: { param: string } }).error.param, 'ignore_eos');
});
