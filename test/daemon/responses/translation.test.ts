import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ChatMessage } from '../../../src/core/messages.js';
import { ApiError } from '../../../src/daemon/api-error.js';
import { forEngine, itemMessage, itemsOf, parseItemId, replyRows } from '../../../src/daemon/responses/items.js';
import { parseResponsesRequest } from '../../../src/daemon/responses/request.js';
import { ResponseEvents } from '../../../src/daemon/responses/stream-events.js';

const call = (id: string, name: string, args: string) => ({ id, type: 'function', function: { name, arguments: args } });

test('input items become the messages to store, system items and instructions the ones sent only', () => {
  const r = parseResponsesRequest({
    model: 'm',
    instructions: 'Be brief.',
    input: [
      { role: 'developer', content: 'Answer in English.' },
      { role: 'user', content: [{ type: 'input_text', text: 'where is order 12345?' }] },
      { type: 'function_call', call_id: 'c1', name: 'track', arguments: '{"id":"12345"}' },
      { type: 'function_call_output', call_id: 'c1', output: '{"status":"shipped"}' },
      { type: 'item_reference', id: 'msg_3_resp_abc' },
      {
        type: 'message',
        role: 'assistant',
        content: [
          { type: 'output_text', text: 'It ' },
          { type: 'output_text', text: 'shipped.' },
        ],
      },
    ],
    tools: [{ type: 'function', name: 'track', parameters: { type: 'object' } }],
    tool_choice: { type: 'function', name: 'track' },
    max_output_tokens: 50,
  });
  assert.deepEqual(r.system, [
    { role: 'developer', content: 'Be brief.' },
    { role: 'developer', content: 'Answer in English.' },
  ]);
  assert.deepEqual(r.entries, [
    { message: { role: 'user', content: 'where is order 12345?' } },
    { message: { role: 'assistant', content: null, tool_calls: [call('c1', 'track', '{"id":"12345"}')] } },
    { message: { role: 'tool', tool_call_id: 'c1', content: '{"status":"shipped"}' } },
    { reference: 'msg_3_resp_abc', param: 'input[4]' },
    { message: { role: 'assistant', content: 'It shipped.' } },
  ]);
  assert.deepEqual(r.chat, {
    model: 'm',
    tools: [{ type: 'function', function: { name: 'track', parameters: { type: 'object' } } }],
    tool_choice: { type: 'function', function: { name: 'track' } },
    max_tokens: 50,
  });
  assert.equal(r.store, true);
  assert.equal(r.stream, false);
});

test('bad requests are 400s that name the field, as OpenAI does', () => {
  const param = (body: unknown) => {
    try {
      parseResponsesRequest(body);
    } catch (err) {
      assert.ok(err instanceof ApiError);
      assert.equal(err.status, 400);
      return err.param;
    }
    assert.fail('accepted');
  };
  assert.equal(param({ input: 'hi', previous_response_id: 'resp_1', conversation: 'conv_1' }), 'previous_response_id');
  assert.equal(param({ input: [{ role: 'robot', content: 'x' }] }), 'input[0].role');
  assert.equal(param({ input: 'hi', tools: [{ type: 'web_search' }] }), 'tools[0].type');
  assert.equal(param({ input: [{ type: 'function_call_output', output: 'x' }] }), 'input[0].call_id');
  assert.equal(param({ input: 'hi', metadata: { k: 1 } }), 'metadata.k');
  assert.equal(param({ input: [{ role: 'system', content: 'only this' }] }), 'input');
  assert.equal(param({ input: 'hi', temperature: 3 }), 'temperature');
});

test('stored messages read back as items with ids that name them, and items go back to the same messages', () => {
  const rows: ChatMessage[] = [
    { role: 'user', content: 'hello' },
    { role: 'assistant', content: 'Hi.' },
    { role: 'assistant', content: null, tool_calls: [call('c1', 'track', '{}')] },
    { role: 'tool', tool_call_id: 'c1', content: 'ok' },
  ];
  const items = rows.flatMap((m, i) => itemsOf(m, i, 'resp_x'));
  assert.deepEqual(
    items.map((i) => [i.type, i.id]),
    [
      ['message', 'msg_0_resp_x'],
      ['message', 'msg_1_resp_x'],
      ['function_call', 'fc_2_resp_x'],
      ['function_call_output', 'fco_3_resp_x'],
    ],
  );
  assert.deepEqual(items.map(itemMessage), rows);
  assert.deepEqual(parseItemId('fc_12.2_customer:4711'), { kind: 'fc', seq: 12, part: 2, sessionId: 'customer:4711' });
  assert.equal(parseItemId('msg_abc'), null);
  // A chat-completions reply with a text and two calls is one message and three items.
  const mixed = itemsOf({ role: 'assistant', content: 'Checking.', tool_calls: [call('a', 't', '{}'), call('b', 't', '{}')] }, 7, 's');
  assert.deepEqual(
    mixed.map((i) => i.id),
    ['msg_7_s', 'fc_7_s', 'fc_7.1_s'],
  );
});

test('a reply is stored one item to a message, and the engine gets the calls joined to the message before them', () => {
  const reply: ChatMessage = { role: 'assistant', content: 'Checking.', tool_calls: [call('a', 't', '{}'), call('b', 't', '{}')] };
  const rows = replyRows(reply);
  assert.equal(rows.length, 3);
  const engine = forEngine([{ role: 'user', content: 'q' }, ...rows, { role: 'tool', tool_call_id: 'a', content: '1' }]);
  assert.deepEqual(engine[1], reply);
  assert.equal(engine.length, 3);
  const plain: ChatMessage[] = [{ role: 'user', content: 'q' }];
  assert.equal(forEngine(plain), plain);
});

function sse(...chunks: unknown[]): Buffer {
  return Buffer.from(chunks.map((c) => `data: ${typeof c === 'string' ? c : JSON.stringify(c)}\n\n`).join(''));
}

function events(text: string): Array<Record<string, unknown>> {
  return text
    .split('\n\n')
    .filter((e) => e !== '')
    .map((e) => JSON.parse(e.split('\n')[1]!.slice(6)) as Record<string, unknown>);
}

test('a stream of chat chunks becomes the semantic events in order, each with the next sequence number', () => {
  const stream = new ResponseEvents((kind, k) => `${kind}_${10 + k}_s`);
  let out = stream.event('response.created', { response: {} });
  const delta = (d: Record<string, unknown>, finish: string | null = null) => ({
    choices: [{ index: 0, delta: d, finish_reason: finish }],
  });
  // Split mid-event: the splitter waits for the rest.
  const bytes = sse(
    delta({ role: 'assistant', content: 'Let me ' }),
    delta({ content: 'check.' }),
    delta({ tool_calls: [{ index: 0, id: 'call_1', function: { name: 'track', arguments: '{"id":' } }] }),
    delta({ tool_calls: [{ index: 0, function: { arguments: '"12345"}' } }] }, 'tool_calls'),
    '[DONE]',
  );
  out += stream.push(bytes.subarray(0, 50)) + stream.push(bytes.subarray(50));
  out += stream.finish();
  const list = events(out);
  assert.deepEqual(
    list.map((e) => e.type),
    [
      'response.created',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
    ],
  );
  assert.deepEqual(
    list.map((e) => e.sequence_number),
    list.map((_, i) => i),
  );
  assert.equal(list[5]!.text, 'Let me check.');
  assert.equal(list[11]!.arguments, '{"id":"12345"}');
  assert.equal((list[12]!.item as { id: string }).id, 'fc_11_s');
  assert.ok(stream.done);
  assert.equal(stream.finishReason, 'tool_calls');
  assert.deepEqual(stream.rows(), [
    { role: 'assistant', content: 'Let me check.' },
    { role: 'assistant', content: null, tool_calls: [call('call_1', 'track', '{"id":"12345"}')] },
  ]);
});
