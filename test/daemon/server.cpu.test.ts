/*
 * Session memory proven on a real LLM: the tiny memory model answers "What is my name?" with the name only
 * when the daemon sent the earlier turn. One engine and one daemon for the file (loading is the slow part).
 */

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { Daemon } from '../../src/daemon/server.js';
import type { RunningCpuEngine } from '../../src/cpu/server.js';
import { cpuRuntimeSkip, startEngineWithDaemon, TINY_MEMORY, type EngineWithDaemon } from '../helpers/cpu-runtime.js';

const skip = cpuRuntimeSkip();

let running: EngineWithDaemon | undefined;
let engine: RunningCpuEngine;
let daemon: Daemon;

before(async () => {
  if (skip) return;
  running = await startEngineWithDaemon(TINY_MEMORY);
  ({ engine, daemon } = running);
});

after(async () => {
  await running?.close();
});

function client(sessionId?: string): OpenAI {
  return new OpenAI({
    baseURL: `${daemon.url}/v1`,
    apiKey: 'unused',
    maxRetries: 0,
    timeout: 60_000,
    defaultHeaders: sessionId ? { 'X-Session-Id': sessionId } : {},
  });
}

async function say(chat: OpenAI, content: string, extra: Partial<OpenAI.Chat.ChatCompletionCreateParamsNonStreaming> = {}) {
  return chat.chat.completions.create({ model: 'tiny-memory', messages: [{ role: 'user', content }], temperature: 0, ...extra });
}

test('with a session id, the model recalls the name from the previous turn', { skip, timeout: 120_000 }, async () => {
  const chat = client(`name-${process.pid}`);
  const first = await say(chat, 'My name is Grace.');
  assert.match(first.choices[0]!.message.content ?? '', /Grace/);
  const second = await say(chat, 'What is my name?');
  assert.match(second.choices[0]!.message.content ?? '', /Grace/);
});

test('with a session id, the model recalls the order number from the previous turn', { skip, timeout: 120_000 }, async () => {
  const chat = client(`order-${process.pid}`);
  await say(chat, 'My order number is 48213.');
  const second = await say(chat, 'What is my order number?');
  assert.match(second.choices[0]!.message.content ?? '', /48213/);
});

test('without a session id the second question has no history, and the model says so', { skip, timeout: 120_000 }, async () => {
  const chat = client();
  await say(chat, 'My name is Grace.');
  const second = await say(chat, 'What is my name?');
  assert.equal(second.choices[0]!.message.content, 'You have not told me your name yet.');
});

test(
  'through the daemon, streaming and non-streaming give the same text and usage, and max_tokens gives length',
  { skip, timeout: 120_000 },
  async () => {
    // Two fresh sessions, so both requests carry the same history: the daemon's system prompt and this turn.
    const whole = await say(client(`whole-${process.pid}`), 'My name is Ada.');
    const stream = await client(`stream-${process.pid}`).chat.completions.create({
      model: 'tiny-memory',
      messages: [{ role: 'user', content: 'My name is Ada.' }],
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage = chunk.usage ?? usage;
    }
    assert.equal(text, whole.choices[0]!.message.content);
    assert.deepEqual(usage, whole.usage);
    // The same request straight to the engine: the daemon added its system prompt and nothing else.
    const direct = await new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: 'unused', maxRetries: 0 }).chat.completions.create({
      model: 'tiny-memory',
      messages: [
        { role: 'system', content: 'You are a helpful customer service assistant.' },
        { role: 'user', content: 'My name is Ada.' },
      ],
      temperature: 0,
    });
    assert.deepEqual(direct.usage, whole.usage);
    assert.equal(direct.choices[0]!.message.content, whole.choices[0]!.message.content);
    const cut = await say(client(`cut-${process.pid}`), 'My name is Ada.', { max_tokens: 3 });
    assert.equal(cut.choices[0]!.finish_reason, 'length');
    assert.equal(cut.usage?.completion_tokens, 3);
  },
);

test(
  "without a session id, prompt_tokens through the daemon is the engine's own count, streamed or not; a session turn adds the system prompt",
  { skip, timeout: 120_000 },
  async () => {
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [{ role: 'user', content: 'My name is Ada.' }];
    const streamedUsage = async (chat: OpenAI) => {
      const stream = await chat.chat.completions.create({
        model: 'tiny-memory',
        messages,
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      });
      let usage: OpenAI.CompletionUsage | undefined;
      for await (const chunk of stream) usage = chunk.usage ?? usage;
      return usage?.prompt_tokens;
    };
    const engineClient = new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const direct = (await engineClient.chat.completions.create({ model: 'tiny-memory', messages, temperature: 0 })).usage?.prompt_tokens;
    assert.ok(direct && direct > 0);
    for (let i = 0; i < 2; i++) {
      assert.equal(await streamedUsage(client()), direct);
      assert.equal((await say(client(), 'My name is Ada.')).usage?.prompt_tokens, direct);
    }
    // A session turn carries the daemon's system prompt: 90 against 35 here. Both modes count it alike.
    const withSystem = (
      await engineClient.chat.completions.create({
        model: 'tiny-memory',
        messages: [{ role: 'system', content: 'You are a helpful customer service assistant.' }, ...messages],
        temperature: 0,
      })
    ).usage?.prompt_tokens;
    assert.ok(withSystem! > direct);
    assert.equal(await streamedUsage(client(`usage-stream-${process.pid}`)), withSystem);
    assert.equal((await say(client(`usage-whole-${process.pid}`), 'My name is Ada.')).usage?.prompt_tokens, withSystem);
  },
);
