import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import OpenAI from 'openai';
import { startCpuEngine, CpuEngineLoadError, type RunningCpuEngine } from '../../src/cpu/server.js';
import { cpuRuntimeDir } from '../../src/cpu/runtime.js';
import { rawRequest } from '../helpers/http.js';
import { requireCpuRuntime, TINY_MEMORY, TINY_CHAT } from '../helpers/cpu-runtime.js';

const SYSTEM = 'You are a helpful customer service assistant.';

async function engineFor(
  t: { after(fn: () => Promise<void>): void },
  options: Partial<Parameters<typeof startCpuEngine>[0]> = {},
): Promise<RunningCpuEngine> {
  const engine = await startCpuEngine({ modelPath: TINY_MEMORY, port: 0, threads: 1, ctxSize: 512, log: () => {}, ...options });
  t.after(() => engine.close());
  return engine;
}

/**
 * One engine with the default options for the tests that only send requests to it (starting one costs seconds:
 * node-llama-cpp tests its binary in a forked process each time), closed when the file ends.
 */
let shared: Promise<RunningCpuEngine> | null = null;
function sharedEngine(): Promise<RunningCpuEngine> {
  shared ??= startCpuEngine({ modelPath: TINY_MEMORY, port: 0, threads: 1, ctxSize: 512, log: () => {} });
  return shared;
}
after(async () => {
  if (shared) await (await shared).close();
});

function clientFor(engine: RunningCpuEngine): OpenAI {
  return new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
}

/** The tokenizer, straight from node-llama-cpp (a second copy of the model, independent of the engine). */
async function tokenizerFor(t: { after(fn: () => Promise<void>): void }) {
  const require = createRequire(join(cpuRuntimeDir(), 'package.json'));
  const lib = (await import(pathToFileURL(require.resolve('node-llama-cpp')).href)) as {
    getLlama(o: object): Promise<{
      loadModel(o: object): Promise<{ tokenize(text: string, special?: boolean): number[]; dispose(): Promise<void> }>;
      dispose(): Promise<void>;
    }>;
  };
  const llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: 'error' });
  const model = await llama.loadModel({ modelPath: TINY_MEMORY, gpuLayers: 0 });
  t.after(async () => {
    await model.dispose();
    await llama.dispose();
  });
  return (text: string, special = false) => model.tokenize(text, special);
}

/** ChatML as the model's template renders it (written out here, not taken from the engine). */
function chatml(messages: Array<{ role: string; content: string }>): string {
  return `${messages.map((m) => `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`).join('')}<|im_start|>assistant\n`;
}

test('the tiny memory model answers from the history the client sends, at temperature 0', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const client = clientFor(await sharedEngine());
  const messages = [
    { role: 'system' as const, content: SYSTEM },
    { role: 'user' as const, content: 'My name is Grace.' },
    { role: 'assistant' as const, content: 'Nice to meet you, Grace!' },
    { role: 'user' as const, content: 'What is my name?' },
  ];
  const reply = await client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 0 });
  assert.match(reply.choices[0]!.message.content ?? '', /Grace/);
  assert.equal(reply.choices[0]!.finish_reason, 'stop');
  const alone = await client.chat.completions.create({ model: 'tiny-memory', messages: [messages[0]!, messages[3]!], temperature: 0 });
  assert.equal(alone.choices[0]!.message.content, 'You have not told me your name yet.');
});

test('usage counts the rendered prompt and the generated tokens as the tokenizer does', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const client = clientFor(await sharedEngine());
  const tokenize = await tokenizerFor(t);
  const messages = [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: 'My order number is 48213.' },
  ];
  const reply = await client.chat.completions.create({
    model: 'tiny-memory',
    messages: messages as OpenAI.Chat.ChatCompletionMessageParam[],
    temperature: 0,
  });
  const text = reply.choices[0]!.message.content ?? '';
  assert.ok(text.length > 0);
  // BOS + the ChatML text, special tokens recognised.
  assert.equal(reply.usage?.prompt_tokens, 1 + tokenize(chatml(messages), true).length);
  assert.equal(reply.usage?.completion_tokens, tokenize(text).length);
  assert.equal(reply.usage?.total_tokens, reply.usage!.prompt_tokens + reply.usage!.completion_tokens);
});

test(
  'prompt_tokens is the tokenizer count of the rendered prompt, streamed or not, on repeat requests over reused sequences',
  { timeout: 180_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    // Two pooled sequences, so requests land on chats (and KV caches) that served other histories before.
    const engine = await engineFor(t, { parallel: 2 });
    const tokenize = await tokenizerFor(t);
    const ada = [{ role: 'user', content: 'My name is Ada.' }];
    const withSystem = [{ role: 'system', content: SYSTEM }, ...ada];
    const post = (messages: object[], stream: boolean, signal?: AbortSignal) =>
      fetch(`${engine.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        signal,
        body: JSON.stringify({
          model: 'tiny-memory',
          messages,
          temperature: 0,
          // The prompt's count is what is checked; a short reply still leaves the sequence's cache reused.
          max_tokens: 8,
          stream,
          ...(stream ? { stream_options: { include_usage: true } } : {}),
        }),
      });
    const promptTokens = async (messages: object[], stream: boolean): Promise<number> => {
      const res = await post(messages, stream);
      assert.equal(res.status, 200);
      if (!stream) return ((await res.json()) as { usage: { prompt_tokens: number } }).usage.prompt_tokens;
      const events = (await res.text()).split('\n').filter((line) => line.startsWith('data: {'));
      const usage = events
        .map((line) => JSON.parse(line.slice('data: '.length)) as { usage?: { prompt_tokens: number } })
        .find((e) => e.usage)?.usage;
      assert.ok(usage, 'the stream carries usage');
      return usage.prompt_tokens;
    };
    /** A stream of the other history, cut after its first chunk: its chat goes back to the pool mid-generation. */
    const abandoned = async (messages: object[]) => {
      const controller = new AbortController();
      const res = await post(messages, true, controller.signal);
      await res.body!.getReader().read();
      controller.abort();
    };
    const expected = (messages: Array<{ role: string; content: string }>) => 1 + tokenize(chatml(messages), true).length;
    const seen: Record<string, number[]> = { ada: [], withSystem: [] };
    for (let round = 0; round < 3; round++) {
      for (const [name, messages, other] of [
        ['ada', ada, withSystem],
        ['withSystem', withSystem, ada],
      ] as const) {
        await abandoned(other);
        seen[name]!.push(await promptTokens(messages, true), await promptTokens(messages, false));
        await promptTokens(other, false);
        seen[name]!.push(await promptTokens(messages, false), await promptTokens(messages, true));
      }
      // And concurrently, both sequences busy with different histories.
      const [a, s, a2, s2] = await Promise.all([
        promptTokens(ada, true),
        promptTokens(withSystem, false),
        promptTokens(ada, false),
        promptTokens(withSystem, true),
      ]);
      seen.ada!.push(a, a2);
      seen.withSystem!.push(s, s2);
    }
    assert.deepEqual(new Set(seen.ada), new Set([expected(ada)]));
    assert.deepEqual(new Set(seen.withSystem), new Set([expected(withSystem)]));
    // 35 and 90 for these two: the difference is exactly the system message's ChatML block.
    assert.equal(expected(withSystem) - expected(ada), tokenize(`<|im_start|>system\n${SYSTEM}<|im_end|>\n`, true).length);
  },
);

test('streaming and non-streaming give the same text, and max_tokens ends with length', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const client = clientFor(await sharedEngine());
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is my name?' }];
  const whole = await client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 0 });
  const stream = await client.chat.completions.create({
    model: 'tiny-memory',
    messages,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let streamed = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    streamed += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    usage = chunk.usage ?? usage;
  }
  assert.equal(streamed, whole.choices[0]!.message.content);
  assert.equal(finish, 'stop');
  assert.deepEqual(usage, whole.usage);

  const cut = await client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 0, max_tokens: 4 });
  assert.equal(cut.choices[0]!.finish_reason, 'length');
  assert.equal(cut.usage?.completion_tokens, 4);
  assert.equal(cut.choices[0]!.message.content, whole.choices[0]!.message.content!.slice(0, 4));
});

test('a stop string ends the reply before it, and the same seed gives the same sampled reply', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const client = clientFor(await sharedEngine());
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is my name?' }];
  const stopped = await client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 0, stop: ['told'] });
  assert.equal(stopped.choices[0]!.message.content, 'You have not ');
  assert.equal(stopped.choices[0]!.finish_reason, 'stop');
  const sample = () =>
    client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 1.5, top_p: 0.95, seed: 7, max_tokens: 30 });
  const [a, b] = [await sample(), await sample()];
  assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
});

/** tiny-chat tells the same 89-token story at temperature 0: long enough that a burst of requests queues. */
const STORY = JSON.stringify({
  model: 'tiny-chat',
  messages: [{ role: 'user', content: 'Tell me a story.' }],
  temperature: 0,
  max_tokens: 200,
});

test('requests beyond the one sequence wait their turn, and beyond the queue get 429 with Retry-After', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const engine = await engineFor(t, { modelPath: TINY_CHAT, maxQueue: 2 });
  // A burst: all eight arrive while the first is still generating, so one runs, two wait, the rest are refused.
  const answers = await Promise.all(
    Array.from({ length: 8 }, async () => {
      const res = await fetch(`${engine.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: STORY,
      });
      return {
        status: res.status,
        retryAfter: res.headers.get('retry-after'),
        body: (await res.json()) as { error?: { message: string }; choices?: Array<{ message: { content: string } }> },
      };
    }),
  );
  const served = answers.filter((a) => a.status === 200);
  const refused = answers.filter((a) => a.status === 429);
  assert.equal(served.length + refused.length, 8, JSON.stringify(answers.map((a) => a.status)));
  assert.ok(served.length >= 3, `served ${served.length}`);
  assert.ok(refused.length >= 1, 'some refused');
  for (const a of refused) {
    assert.equal(a.retryAfter, '1');
    assert.match(a.body.error?.message ?? '', /queue limit 2/);
  }
  // The ones that waited got the same reply as the first: queued, not cut short.
  assert.equal(new Set(served.map((a) => a.body.choices?.[0]?.message.content)).size, 1);
  const stats = engine.stats();
  assert.deepEqual([stats.completed, stats.rejected, stats.running, stats.waiting], [served.length, refused.length, 0, 0]);
  const metrics = await (await fetch(`${engine.url}/metrics`)).text();
  assert.match(metrics, /vllm:num_requests_running\{model_name="tiny-chat"\} 0\.0/);
  assert.match(metrics, new RegExp(`vllm:request_success_total\\{finished_reason="stop",model_name="tiny-chat"\\} ${served.length}\\.0`));
});

test('clients that go away stop their generation or leave the queue, and free the sequence', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const engine = await engineFor(t, { modelPath: TINY_CHAT });
  const full = (await (
    await fetch(`${engine.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: STORY })
  ).json()) as { usage: { completion_tokens: number } };
  const before = engine.stats().generationTokens;
  const controller = new AbortController();
  const streamBody = JSON.stringify({ ...JSON.parse(STORY), stream: true });
  const requests = Array.from({ length: 6 }, () =>
    fetch(`${engine.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: streamBody,
      signal: controller.signal,
    }).then(
      async (res) => {
        await res.body!.getReader().read();
        return 'started';
      },
      () => 'aborted before headers',
    ),
  );
  await Promise.race(requests); // the first one streams
  controller.abort();
  await Promise.allSettled(requests);
  while (engine.stats().running > 0 || engine.stats().waiting > 0) await new Promise((r) => setTimeout(r, 10));
  const stats = engine.stats();
  assert.equal(stats.completed + stats.aborted, 7);
  assert.ok(stats.aborted >= 4, `aborted ${stats.aborted}`);
  assert.ok(stats.generationTokens - before < 6 * full.usage.completion_tokens, 'generation stopped early');
  const after = await clientFor(engine).chat.completions.create({
    model: 'tiny-chat',
    messages: [{ role: 'user', content: 'Tell me a story.' }],
    temperature: 0,
    max_tokens: 200,
  });
  assert.equal(after.usage?.completion_tokens, full.usage.completion_tokens);
  const metrics = await (await fetch(`${engine.url}/metrics`)).text();
  assert.match(metrics, new RegExp(`vllm:request_success_total\\{finished_reason="abort",model_name="tiny-chat"\\} ${stats.aborted}\\.0`));
});

test(
  'with an API key /v1 needs the bearer token (401 as vLLM), /health and /metrics stay open, and a foreign Host gets 403',
  { timeout: 120_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const engine = await engineFor(t, { apiKey: 'sekret', engineHostname: 'cs-llm-engine-cpu' });
    const wrong = await new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: 'nope', maxRetries: 0 }).models
      .list()
      .catch((err: unknown) => err);
    assert.ok(wrong instanceof OpenAI.AuthenticationError);
    for (const [method, path, authorization] of [
      ['POST', '/v1/chat/completions', undefined],
      ['POST', '/v1/chat/completions', 'Bearer nope'],
      ['GET', '/v1/nope', 'Basic sekret'],
    ] as const) {
      const refused = await rawRequest(engine.url, { method, path, headers: authorization ? { authorization } : {} });
      assert.equal(refused.status, 401, `${method} ${path}`);
      assert.deepEqual(JSON.parse(refused.text), { error: 'Unauthorized' });
    }
    const reply = await new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: 'sekret', maxRetries: 0 }).chat.completions.create({
      model: 'tiny-memory',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 2,
    });
    assert.equal(reply.usage?.completion_tokens, 2);
    assert.equal((await fetch(`${engine.url}/health`)).status, 200);
    assert.equal((await fetch(`${engine.url}/metrics`)).status, 200);

    const auth = { authorization: 'Bearer sekret' };
    for (const path of ['/health', '/metrics', '/v1/models']) {
      const refused = await rawRequest(engine.url, { path, headers: { host: 'attacker.example', ...auth } });
      assert.equal(refused.status, 403, path);
      assert.equal((JSON.parse(refused.text) as { error: { code: number } }).error.code, 403);
    }
    for (const host of [`localhost:${engine.port}`, 'cs-llm-engine-cpu:8000'])
      assert.equal((await rawRequest(engine.url, { path: '/v1/models', headers: { host, ...auth } })).status, 200, host);
  },
);

test('health answers 503 while the model loads, then 200; models lists the served name and context', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const engine = await engineFor(t, { waitForLoad: false, servedModelName: 'tiny', modelPath: TINY_CHAT });
  const early = await fetch(`${engine.url}/health`);
  assert.equal(early.status, 503);
  await engine.ready;
  assert.equal((await fetch(`${engine.url}/health`)).status, 200);
  const models = (await (await fetch(`${engine.url}/v1/models`)).json()) as { data: Array<{ id: string; max_model_len: number }> };
  assert.deepEqual(
    models.data.map((m) => [m.id, m.max_model_len]),
    [['tiny', 512]],
  );
  const wrong = await fetch(`${engine.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'other', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(wrong.status, 404);
});

test(
  'a missing file, a file that is not GGUF, a wrong checksum and a context beyond the model are refused by name',
  { timeout: 120_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const start = (options: Partial<Parameters<typeof startCpuEngine>[0]>) =>
      startCpuEngine({ modelPath: TINY_MEMORY, port: 0, threads: 1, log: () => {}, ...options });
    const refused = async (options: Partial<Parameters<typeof startCpuEngine>[0]>, kind: string, message: RegExp) =>
      assert.rejects(start(options), (err: unknown) => err instanceof CpuEngineLoadError && err.kind === kind && message.test(err.message));
    await refused({ modelPath: '/nonexistent/model.gguf' }, 'missing', /model file not found: \/nonexistent\/model\.gguf/);
    await refused({ modelPath: new URL(import.meta.url).pathname }, 'not-gguf', /model file is not GGUF/);
    await refused({ sha256: '0'.repeat(64) }, 'checksum', /checksum mismatch/);
    await refused({ ctxSize: 4096 }, 'context-too-large', /requested context 4096 is larger than the model's context length 512/);
  },
);

test(
  'with --stream-interval-ms 0 every generated piece is its own chunk; coalesced or not, the text is the same',
  { timeout: 120_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const [each, coalesced] = [await engineFor(t, { streamIntervalMs: 0 }), await sharedEngine()];
    const collect = async (engine: RunningCpuEngine) => {
      const stream = await clientFor(engine).chat.completions.create({
        model: 'tiny-memory',
        messages: [{ role: 'user', content: 'My order number is 48213.' }],
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      const pieces: string[] = [];
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) {
        const content = chunk.choices[0]?.delta.content;
        if (content) pieces.push(content);
        usage = chunk.usage ?? usage;
      }
      return { pieces, usage };
    };
    const a = await collect(each);
    const b = await collect(coalesced);
    // The tiny model's vocabulary is mostly single characters: one token, one piece, one chunk.
    assert.equal(a.pieces.length, a.usage?.completion_tokens);
    assert.equal(b.pieces.join(''), a.pieces.join(''));
    assert.deepEqual(b.usage, a.usage);
  },
);
