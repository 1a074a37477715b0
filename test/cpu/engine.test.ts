import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import OpenAI from 'openai';
import { startCpuEngine, CpuEngineLoadError, type RunningCpuEngine } from '../../src/cpu/server.js';
import { cpuRuntimeDir } from '../../src/cpu/runtime.js';
import { requireCpuRuntime, TINY_MEMORY, TINY_CHAT } from './runtime.js';

const SYSTEM = 'You are a helpful customer service assistant.';

async function engineFor(t: { after(fn: () => Promise<void>): void }, options: Partial<Parameters<typeof startCpuEngine>[0]> = {}): Promise<RunningCpuEngine> {
  const engine = await startCpuEngine({ modelPath: TINY_MEMORY, port: 0, threads: 1, ctxSize: 512, log: () => {}, ...options });
  t.after(() => engine.close());
  return engine;
}

function clientFor(engine: RunningCpuEngine): OpenAI {
  return new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
}

/** The tokenizer, straight from node-llama-cpp (a second copy of the model, independent of the engine). */
async function tokenizerFor(t: { after(fn: () => Promise<void>): void }) {
  const require = createRequire(join(cpuRuntimeDir(), 'package.json'));
  const lib = (await import(pathToFileURL(require.resolve('node-llama-cpp')).href)) as {
    getLlama(o: object): Promise<{ loadModel(o: object): Promise<{ tokenize(text: string, special?: boolean): number[]; dispose(): Promise<void> }>; dispose(): Promise<void> }>;
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
  const client = clientFor(await engineFor(t));
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
  const client = clientFor(await engineFor(t));
  const tokenize = await tokenizerFor(t);
  const messages = [
    { role: 'system', content: SYSTEM },
    { role: 'user', content: 'My order number is 48213.' },
  ];
  const reply = await client.chat.completions.create({ model: 'tiny-memory', messages: messages as OpenAI.Chat.ChatCompletionMessageParam[], temperature: 0 });
  const text = reply.choices[0]!.message.content ?? '';
  assert.ok(text.length > 0);
  // BOS + the ChatML text, special tokens recognised.
  assert.equal(reply.usage?.prompt_tokens, 1 + tokenize(chatml(messages), true).length);
  assert.equal(reply.usage?.completion_tokens, tokenize(text).length);
  assert.equal(reply.usage?.total_tokens, reply.usage!.prompt_tokens + reply.usage!.completion_tokens);
});

test('streaming and non-streaming give the same text, and max_tokens ends with length', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const client = clientFor(await engineFor(t));
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is my name?' }];
  const whole = await client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 0 });
  const stream = await client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 0, stream: true, stream_options: { include_usage: true } });
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
  const client = clientFor(await engineFor(t));
  const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'What is my name?' }];
  const stopped = await client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 0, stop: ['told'] });
  assert.equal(stopped.choices[0]!.message.content, 'You have not ');
  assert.equal(stopped.choices[0]!.finish_reason, 'stop');
  const sample = () => client.chat.completions.create({ model: 'tiny-memory', messages, temperature: 1.5, top_p: 0.95, seed: 7, max_tokens: 30 });
  const [a, b] = [await sample(), await sample()];
  assert.equal(a.choices[0]!.message.content, b.choices[0]!.message.content);
});

test('requests beyond the one sequence wait their turn, and beyond the queue get 429 with Retry-After', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const engine = await engineFor(t, { maxQueue: 1 });
  const body = JSON.stringify({ model: 'tiny-memory', messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 1, max_tokens: 400, stream: true });
  const post = () => fetch(`${engine.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const first = await post(); // streaming: headers arrive once it holds the sequence
  assert.equal(first.status, 200);
  const second = post();
  while (engine.stats().waiting < 1) await new Promise((r) => setTimeout(r, 5));
  const third = await post();
  assert.equal(third.status, 429);
  assert.equal(third.headers.get('retry-after'), '1');
  assert.match(((await third.json()) as { error: { message: string } }).error.message, /queue limit 1/);
  const metrics = await (await fetch(`${engine.url}/metrics`)).text();
  assert.match(metrics, /vllm:num_requests_running\{model_name="tiny-memory"\} 1\.0/);
  assert.match(metrics, /vllm:num_requests_waiting\{model_name="tiny-memory"\} 1\.0/);
  await first.text();
  const secondRes = await second;
  assert.equal(secondRes.status, 200);
  await secondRes.text();
  assert.equal(engine.stats().completed, 2);
});

test('a client that goes away stops its generation and frees the sequence', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const engine = await engineFor(t);
  const controller = new AbortController();
  const res = await fetch(`${engine.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny-memory', messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 1, max_tokens: 450, stream: true }),
    signal: controller.signal,
  });
  assert.equal(res.status, 200);
  const reader = res.body!.getReader();
  await reader.read();
  controller.abort();
  while (engine.stats().running > 0) await new Promise((r) => setTimeout(r, 10));
  assert.equal(engine.stats().aborted, 1);
  assert.equal(engine.stats().completed, 0);
  assert.ok(engine.stats().generationTokens < 450, `generated ${engine.stats().generationTokens} tokens after the abort`);
  const after = await clientFor(engine).chat.completions.create({ model: 'tiny-memory', messages: [{ role: 'user', content: 'What is my name?' }], temperature: 0 });
  assert.equal(after.choices[0]!.message.content, 'You have not told me your name yet.');
  const metrics = await (await fetch(`${engine.url}/metrics`)).text();
  assert.match(metrics, /vllm:request_success_total\{finished_reason="abort",model_name="tiny-memory"\} 1\.0/);
});

test('health answers 503 while the model loads, then 200; models lists the served name and context', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const engine = await engineFor(t, { waitForLoad: false, servedModelName: 'tiny', modelPath: TINY_CHAT });
  const early = await fetch(`${engine.url}/health`);
  assert.equal(early.status, 503);
  await engine.ready;
  assert.equal((await fetch(`${engine.url}/health`)).status, 200);
  const models = (await (await fetch(`${engine.url}/v1/models`)).json()) as { data: Array<{ id: string; max_model_len: number }> };
  assert.deepEqual(models.data.map((m) => [m.id, m.max_model_len]), [['tiny', 512]]);
  const wrong = await fetch(`${engine.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'other', messages: [{ role: 'user', content: 'hi' }] }) });
  assert.equal(wrong.status, 404);
});

test('a missing file, a file that is not GGUF, a wrong checksum and a context beyond the model are refused by name', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const start = (options: Partial<Parameters<typeof startCpuEngine>[0]>) => startCpuEngine({ modelPath: TINY_MEMORY, port: 0, threads: 1, log: () => {}, ...options });
  const refused = async (options: Partial<Parameters<typeof startCpuEngine>[0]>, kind: string, message: RegExp) =>
    assert.rejects(start(options), (err: unknown) => err instanceof CpuEngineLoadError && err.kind === kind && message.test(err.message));
  await refused({ modelPath: '/nonexistent/model.gguf' }, 'missing', /model file not found: \/nonexistent\/model\.gguf/);
  await refused({ modelPath: new URL(import.meta.url).pathname }, 'not-gguf', /model file is not GGUF/);
  await refused({ sha256: '0'.repeat(64) }, 'checksum', /checksum mismatch/);
  await refused({ ctxSize: 4096 }, 'context-too-large', /requested context 4096 is larger than the model's context length 512/);
});

test('with --stream-interval-ms 0 every generated piece is its own chunk; coalesced or not, the text is the same', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const [each, coalesced] = [await engineFor(t, { streamIntervalMs: 0 }), await engineFor(t)];
  const collect = async (engine: RunningCpuEngine) => {
    const stream = await clientFor(engine).chat.completions.create({ model: 'tiny-memory', messages: [{ role: 'user', content: 'My order number is 48213.' }], temperature: 0, stream: true, stream_options: { include_usage: true } });
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
});
