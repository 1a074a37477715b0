import assert from 'node:assert/strict';
import { test } from 'node:test';
import type OpenAI from 'openai';
import { startHarness } from '../harness.js';

const MODEL = 'cs-llm-sim';

test('a streamed response sends the semantic events in order with increasing sequence numbers, committed before response.completed', async (t) => {
  const h = await startHarness(t, { sim: { tokensPerSecond: 2000 } });
  const client = h.client();
  const stream = await client.responses.create({ model: MODEL, input: 'Hello, my name is Lin.', stream: true });
  const types: string[] = [];
  const sequence: number[] = [];
  let completed: OpenAI.Responses.Response | null = null;
  let storedAtCompleted = -1;
  let text = '';
  for await (const event of stream) {
    types.push(event.type);
    sequence.push(event.sequence_number);
    if (event.type === 'response.output_text.delta') text += event.delta;
    if (event.type === 'response.completed') {
      completed = event.response;
      storedAtCompleted = await h.daemon.store.stats.messageCount();
    }
  }
  assert.deepEqual(
    sequence,
    sequence.map((_, i) => i),
  );
  const distinct = types.filter((type, i) => type !== types[i - 1]);
  assert.deepEqual(distinct, [
    'response.created',
    'response.in_progress',
    'response.output_item.added',
    'response.content_part.added',
    'response.output_text.delta',
    'response.output_text.done',
    'response.content_part.done',
    'response.output_item.done',
    'response.completed',
  ]);
  assert.ok(types.filter((type) => type === 'response.output_text.delta').length > 1);
  assert.ok(completed);
  assert.equal(completed.status, 'completed');
  const message = completed.output[0];
  assert.ok(message?.type === 'message' && message.content[0]?.type === 'output_text');
  assert.equal(message.content[0].text, text);
  assert.ok((completed.usage?.output_tokens ?? 0) > 0);
  assert.equal(storedAtCompleted, 2, 'the turn was stored before response.completed went out');

  // The stream helper accumulates the same response, and the next turn sees the streamed one.
  const next = client.responses.stream({ model: MODEL, previous_response_id: completed.id, input: 'What is my name?' });
  const final = await next.finalResponse();
  assert.equal(final.output_text, 'Your name is Lin.');
  const reply = await client.responses.create({
    model: MODEL,
    previous_response_id: final.id,
    input: [{ type: 'item_reference', id: message.id }],
  });
  assert.equal(reply.status, 'completed');
});

test('a streamed function call sends its argument deltas, and the stream helper parses the call', async (t) => {
  const h = await startHarness(t, { sim: { tokensPerSecond: 2000 } });
  const client = h.client();
  const stream = client.responses.stream({
    model: MODEL,
    input: 'Where is order 12345?',
    tools: [
      {
        type: 'function',
        name: 'track_order',
        parameters: { type: 'object', properties: { order_id: { type: 'string' } } },
        strict: false,
      },
    ],
  });
  const types: string[] = [];
  stream.on('event', (e) => types.push(e.type));
  const final = await stream.finalResponse();
  const call = final.output[0];
  assert.ok(call?.type === 'function_call');
  assert.deepEqual(JSON.parse(call.arguments), { order_id: '12345' });
  assert.ok(types.includes('response.function_call_arguments.delta'));
  assert.ok(types.indexOf('response.function_call_arguments.done') < types.indexOf('response.completed'));
});

test('an engine that breaks off mid-stream gets response.failed and nothing is stored', async (t) => {
  const h = await startHarness(t, { sim: { tokensPerSecond: 2000, dieMidStreamRate: 1 } });
  const client = h.client();
  const stream = await client.responses.create({ model: MODEL, input: 'count to 50', stream: true });
  const types: string[] = [];
  let failed: OpenAI.Responses.Response | null = null;
  try {
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === 'response.failed') failed = event.response;
    }
  } catch {
    // a client may also see the connection end
  }
  assert.ok(failed, `events: ${types.join(', ')}`);
  assert.equal(failed.status, 'failed');
  assert.equal(await h.daemon.store.stats.messageCount(), 0);
});
