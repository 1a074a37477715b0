/*
 * Responses memory proven on a real LLM: the CPU engine's tiny memory model answers "What is my name?" with
 * the name only when the daemon sent the earlier response's turn. One engine and one daemon for the file.
 */

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import OpenAI from 'openai';
import { cpuRuntimeSkip, startEngineWithDaemon, TINY_MEMORY, type EngineWithDaemon } from '../../helpers/cpu-runtime.js';

const skip = cpuRuntimeSkip();
let running: EngineWithDaemon | undefined;
let client: OpenAI;

before(async () => {
  if (skip) return;
  running = await startEngineWithDaemon(TINY_MEMORY);
  client = new OpenAI({ baseURL: `${running.daemon.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 60_000 });
});

after(async () => {
  await running?.close();
});

test(
  'previous_response_id gives the model the earlier turn: it recalls the name, streamed and not',
  { skip, timeout: 180_000 },
  async () => {
    const first = await client.responses.create({ model: 'tiny-memory', input: 'My name is Grace.', temperature: 0 });
    const second = await client.responses.create({
      model: 'tiny-memory',
      previous_response_id: first.id,
      input: 'What is my name?',
      temperature: 0,
    });
    assert.match(second.output_text, /Grace/);
    const streamed = await client.responses
      .stream({ model: 'tiny-memory', previous_response_id: first.id, input: 'What is my name?', temperature: 0 })
      .finalResponse();
    assert.match(streamed.output_text, /Grace/);
    // Without the chain the same question has no name to give.
    const alone = await client.responses.create({ model: 'tiny-memory', input: 'What is my name?', temperature: 0 });
    assert.doesNotMatch(alone.output_text, /Grace/);
  },
);
