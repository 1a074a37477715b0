/*
 * vLLM's ignore_eos on the CPU engine, with tiny-chat: "What is 2+2?" gets a short reply at temperature 0
 * (22 tokens here), so a reply of 150 tokens can only come from generating past the end of generation.
 * One engine and one stateless daemon in front of it for the file (loading is the slow part).
 */

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { Daemon } from '../../src/daemon/server.js';
import type { RunningCpuEngine } from '../../src/cpu/server.js';
import { endOfGenerationTokens, ignoreEosProblem, withoutStopTriggers } from '../../src/cpu/ignore-eos.js';
import { loadNodeLlamaCpp, type ChatWrapperLike, type HistoryItem } from '../../src/cpu/runtime.js';
import { cpuRuntimeSkip, startEngineWithDaemon, TINY_CHAT, type EngineWithDaemon } from '../helpers/cpu-runtime.js';

const skip = cpuRuntimeSkip();

const MAX = 150;
const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is 2+2?' }];
/** vLLM's extra body field: the openai client sends body fields its types do not know as they are. */
type Params = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & { ignore_eos?: unknown };
type StreamParams = OpenAI.Chat.ChatCompletionCreateParamsStreaming & { ignore_eos?: unknown };

let running: EngineWithDaemon | undefined;
let engine: RunningCpuEngine;
let daemon: Daemon;

before(async () => {
  if (skip) return;
  running = await startEngineWithDaemon(TINY_CHAT);
  ({ engine, daemon } = running);
});

after(async () => {
  await running?.close();
});

const clientOf = (baseURL: string) => new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });

async function streamed(
  client: OpenAI,
  params: StreamParams,
): Promise<{ text: string; finish: string | null; usage: OpenAI.CompletionUsage | undefined }> {
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of await client.chat.completions.create(params)) {
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  return { text, finish, usage };
}

test('ignoreEosProblem refuses ignore_eos without max_tokens, and nothing else', () => {
  assert.equal(ignoreEosProblem({ ignoreEos: false, maxTokens: undefined }), undefined);
  assert.equal(ignoreEosProblem({ ignoreEos: true, maxTokens: 1 }), undefined);
  const problem = ignoreEosProblem({ ignoreEos: true, maxTokens: undefined });
  assert.equal(problem?.status, 400);
  assert.equal(problem?.param, 'max_tokens');
  assert.match(problem?.message ?? '', /^ignore_eos needs max_tokens/);
});

test(
  "the end-of-generation tokens and the ChatML stop triggers that ignore_eos turns off are the model's own",
  { skip, timeout: 120_000 },
  async (t) => {
    const lib = (await loadNodeLlamaCpp()) as unknown as {
      getLlama(o: object): Promise<{
        loadModel(o: object): Promise<
          Parameters<typeof endOfGenerationTokens>[0] & {
            detokenize(tokens: number[], special: boolean): string;
            tokens: { eos: number };
            dispose(): Promise<void>;
          }
        >;
        dispose(): Promise<void>;
      }>;
      resolveChatWrapper(model: object): ChatWrapperLike;
    };
    const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
    const model = await llama.loadModel({ modelPath: TINY_CHAT, gpuLayers: 0 });
    t.after(async () => {
      await model.dispose();
      await llama.dispose();
    });
    const eog = endOfGenerationTokens(model);
    assert.ok(eog.includes(model.tokens.eos));
    assert.ok(eog.map((token) => model.detokenize([token], true)).includes('<|im_end|>'));

    const wrapper = lib.resolveChatWrapper(model);
    assert.equal(wrapper.wrapperName, 'ChatML');
    const open = withoutStopTriggers(wrapper);
    const chatHistory: HistoryItem[] = [
      { type: 'user', text: 'What is 2+2?' },
      { type: 'model', response: [] },
    ];
    const [normal, opened] = [wrapper.generateContextState({ chatHistory }), open.generateContextState({ chatHistory })];
    assert.ok((normal.stopGenerationTriggers?.length ?? 0) > 0, 'ChatML ends a reply on its triggers');
    assert.deepEqual(opened.stopGenerationTriggers, []);
    assert.equal(opened.contextText.toString(), normal.contextText.toString());
    assert.equal(open.wrapperName, 'ChatML');
  },
);

test(
  'with ignore_eos and max_tokens the reply runs to exactly max_tokens with length, streamed and not; without it stays short',
  { skip, timeout: 180_000 },
  async () => {
    const client = clientOf(engine.url);
    const base = { model: 'tiny-chat', messages, temperature: 0, seed: 7 };
    const short = await client.chat.completions.create(base);
    assert.equal(short.choices[0]!.finish_reason, 'stop');
    assert.ok(short.usage!.completion_tokens < MAX, `a short reply: ${short.usage!.completion_tokens} tokens`);
    // ignore_eos false is the default, with or without max_tokens.
    const notIgnored = await client.chat.completions.create({ ...base, max_tokens: MAX, ignore_eos: false } as Params);
    assert.equal(notIgnored.choices[0]!.message.content, short.choices[0]!.message.content);
    assert.equal(notIgnored.choices[0]!.finish_reason, 'stop');

    const params: Params = { ...base, max_tokens: MAX, ignore_eos: true };
    const long = await client.chat.completions.create(params);
    const text = long.choices[0]!.message.content!;
    assert.equal(long.choices[0]!.finish_reason, 'length');
    assert.equal(long.usage?.completion_tokens, MAX);
    // Greedy: the same reply up to where it would have ended, then more.
    assert.ok(text.startsWith(short.choices[0]!.message.content!), JSON.stringify(text));
    assert.ok(text.length > short.choices[0]!.message.content!.length);

    const stream = await streamed(client, { ...params, stream: true, stream_options: { include_usage: true } });
    assert.equal(stream.text, text);
    assert.equal(stream.finish, 'length');
    assert.deepEqual(stream.usage, long.usage);

    // max_completion_tokens counts as max_tokens.
    const viaCompletionTokens = await client.chat.completions.create({ ...base, max_completion_tokens: 40, ignore_eos: true } as Params);
    assert.equal(viaCompletionTokens.usage?.completion_tokens, 40);
    assert.equal(viaCompletionTokens.choices[0]!.finish_reason, 'length');
  },
);

test("the client's stop strings still end an ignore_eos reply, in the part past the normal end", { skip, timeout: 120_000 }, async () => {
  const client = clientOf(engine.url);
  const base = { model: 'tiny-chat', messages, temperature: 0, seed: 7 };
  const short = (await client.chat.completions.create(base)).choices[0]!.message.content!;
  const long = (await client.chat.completions.create({ ...base, max_tokens: MAX, ignore_eos: true } as Params)).choices[0]!.message
    .content!;
  // A stop string taken from the continuation, well past the normal reply's end.
  const at = short.length + 20;
  const stop = long.slice(at, at + 4);
  const expected = long.slice(0, long.indexOf(stop));
  assert.ok(expected.length > short.length, `the stop string ${JSON.stringify(stop)} is past the normal end`);
  for (const stream of [false, true]) {
    const params = { ...base, max_tokens: MAX, ignore_eos: true, stop: [stop] };
    const reply = stream
      ? await streamed(client, { ...params, stream: true } as StreamParams)
      : await client.chat.completions
          .create(params as Params)
          .then((r) => ({ text: r.choices[0]!.message.content, finish: r.choices[0]!.finish_reason }));
    assert.equal(reply.text, expected);
    assert.equal(reply.finish, 'stop');
  }
});

test(
  'ignore_eos without max_tokens is a 400 naming max_tokens; a non-boolean ignore_eos is a 400 naming it',
  { skip, timeout: 120_000 },
  async () => {
    const post = (body: object) =>
      fetch(`${engine.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-chat', messages, ...body }),
      });
    for (const stream of [false, true]) {
      const res = await post({ ignore_eos: true, stream });
      assert.equal(res.status, 400);
      const { error } = (await res.json()) as { error: { message: string; type: string; param: string; code: number } };
      assert.match(error.message, /^ignore_eos needs max_tokens/);
      assert.deepEqual([error.type, error.param, error.code], ['BadRequestError', 'max_tokens', 400]);
    }
    const bad = await post({ ignore_eos: 'yes', max_tokens: 5 });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { error: { param: string } }).error.param, 'ignore_eos');
    await assert.rejects(
      clientOf(engine.url).chat.completions.create({ model: 'tiny-chat', messages, ignore_eos: true } as Params),
      (err: unknown) => err instanceof OpenAI.BadRequestError && /ignore_eos needs max_tokens/.test(err.message),
    );
  },
);

test(
  'through the daemon (stateless), ignore_eos passes to the engine untouched: the same 150 tokens, streamed and not',
  { skip, timeout: 180_000 },
  async () => {
    const viaDaemon = clientOf(daemon.url);
    const params: Params = { model: 'tiny-chat', messages, temperature: 0, seed: 7, max_tokens: MAX, ignore_eos: true };
    const direct = await clientOf(engine.url).chat.completions.create(params);
    const whole = await viaDaemon.chat.completions.create(params);
    assert.equal(whole.choices[0]!.finish_reason, 'length');
    assert.equal(whole.usage?.completion_tokens, MAX);
    assert.equal(whole.choices[0]!.message.content, direct.choices[0]!.message.content);
    const stream = await streamed(viaDaemon, { ...params, stream: true, stream_options: { include_usage: true } });
    assert.equal(stream.text, direct.choices[0]!.message.content);
    assert.equal(stream.finish, 'length');
    assert.equal(stream.usage?.completion_tokens, MAX);
    // The engine's refusal reaches the client through the daemon.
    await assert.rejects(
      viaDaemon.chat.completions.create({ ...params, max_tokens: undefined }),
      (err: unknown) => err instanceof OpenAI.APIError && err.status === 400 && /ignore_eos needs max_tokens/.test(err.message),
    );
  },
);
