// The Responses API through the two SDKs most clients use it from, unchanged, against the daemon and the simulator.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createOpenAI } from '@ai-sdk/openai';
import { Agent, run, setDefaultOpenAIClient, setTracingDisabled, tool } from '@openai/agents';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';
import { z } from 'zod';
import { startHarness } from '../harness.js';

const MODEL = 'cs-llm-sim';

test('@ai-sdk/openai openai.responses() keeps memory through providerOptions.openai.previousResponseId, streamed and not', async (t) => {
  const h = await startHarness(t, { sim: { tokensPerSecond: 2000 } });
  const sent: string[] = [];
  const openai = createOpenAI({
    baseURL: `${h.daemon.url}/v1`,
    apiKey: 'unused',
    fetch: (url, init) => {
      if (typeof init?.body === 'string') sent.push(init.body);
      return fetch(url, init);
    },
  });
  const first = await generateText({ model: openai.responses(MODEL), prompt: 'Hello, my name is Noor.' });
  const firstId = first.providerMetadata?.openai?.responseId;
  assert.equal(typeof firstId, 'string');
  const second = await generateText({
    model: openai.responses(MODEL),
    prompt: 'What is my name?',
    providerOptions: { openai: { previousResponseId: firstId as string } },
  });
  assert.equal(second.text, 'Your name is Noor.');

  const streamed = streamText({
    model: openai.responses(MODEL),
    prompt: 'What was my first message?',
    providerOptions: { openai: { previousResponseId: second.providerMetadata?.openai?.responseId as string } },
  });
  let text = '';
  for await (const part of streamed.textStream) text += part;
  assert.equal(text, 'Your first message was: "Hello, my name is Noor.".');
  assert.equal(await streamed.finishReason, 'stop');

  // An app that resends its history: the SDK sends the earlier assistant turn as an item_reference.
  const resent = await generateText({
    model: openai.responses(MODEL),
    messages: [
      { role: 'user', content: 'Hello, my name is Noor.' },
      ...first.response.messages,
      { role: 'user', content: 'What is my name?' },
    ],
  });
  assert.equal(resent.text, 'Your name is Noor.');
  assert.match(sent[sent.length - 1]!, /"type":"item_reference"/);
});

test('@openai/agents: an agent runs its function tool over the Responses API, and a second run continues the first', async (t) => {
  const h = await startHarness(t);
  setTracingDisabled(true);
  setDefaultOpenAIClient(new OpenAI({ baseURL: `${h.daemon.url}/v1`, apiKey: 'unused', maxRetries: 0 }));
  const calls: string[] = [];
  const trackOrder = tool({
    name: 'track_order',
    description: 'Where an order is',
    parameters: z.object({ order_id: z.string() }),
    execute: async ({ order_id }) => {
      calls.push(order_id);
      return JSON.stringify({ order_id, status: 'in transit' });
    },
  });
  const agent = new Agent({ name: 'support', instructions: 'You help with orders.', model: MODEL, tools: [trackOrder] });
  const first = await run(agent, 'Hello, my name is Ola. Where is order 12345?');
  assert.deepEqual(calls, ['12345']);
  assert.equal(first.finalOutput, 'According to track_order, order_id is 12345, status is in transit.');
  assert.ok(first.lastResponseId);
  const second = await run(agent, 'What is my name?', { previousResponseId: first.lastResponseId! });
  assert.equal(second.finalOutput, 'Your name is Ola.');
});
