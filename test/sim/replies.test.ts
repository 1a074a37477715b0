import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChatMessage, ToolDefinition } from '../../src/openai-server/messages.js';
import { completionReply, decideChatReply, promptTokenCount } from '../../src/sim/replies.js';

const user = (content: string): ChatMessage => ({ role: 'user', content });
const assistant = (content: string): ChatMessage => ({ role: 'assistant', content });
const textOf = (messages: ChatMessage[], extra: Partial<Parameters<typeof decideChatReply>[0]> = {}) => {
  const reply = decideChatReply({ messages, ...extra });
  assert.equal(reply.kind, 'text');
  return reply.kind === 'text' ? reply.text : '';
};

const trackOrder: ToolDefinition = {
  type: 'function',
  function: { name: 'track_order', parameters: { properties: { order_number: { type: 'string' } } } },
};

test('the default reply names the turn, quotes the last user message and carries a hash of the conversation', () => {
  const one = textOf([user('Hello there')]);
  assert.match(one, /^Turn 1\. You said: "Hello there"\. .*\(conversation [0-9a-f]{6}\)\.$/);
  const three = textOf([user('a'), assistant('b'), user('c'), assistant('d'), user('Hello there')]);
  assert.match(three, /^Turn 3\. You said: "Hello there"/);
  assert.notEqual(one.match(/conversation (\w+)/)![1], three.match(/conversation (\w+)/)![1]);
  assert.equal(textOf([user('Hello there')]), one, 'same conversation, same reply');
});

test('"what was my first message?" quotes the first user message of the history', () => {
  const text = textOf([
    { role: 'system', content: 'Be brief.' },
    user('I like green tea.'),
    assistant('ok'),
    user('What was my first message?'),
  ]);
  assert.equal(text, 'Your first message was: "I like green tea.".');
  assert.match(textOf([user('what was my first message?')]), /This is your first message/);
});

test('"what is my name?" uses "my name is X" from an earlier turn, or says it does not know', () => {
  assert.equal(textOf([user('Hi, my name is Ada.'), assistant('Hello'), user("What's my name?")]), 'Your name is Ada.');
  assert.equal(textOf([user('my name is Ada'), user('my name is Grace'), user('what is my name')]), 'Your name is Grace.');
  assert.match(textOf([user('what is my name?')]), /I do not know your name yet/);
});

test('"how many messages" counts the user messages, this one included', () => {
  assert.match(
    textOf([user('a'), assistant('b'), user('c'), assistant('d'), user('How many messages have I sent?')]),
    /You have sent 3 messages/,
  );
});

test('the system prompt rule quotes the system message, and content arrays count as text', () => {
  const text = textOf([
    { role: 'system', content: [{ type: 'text', text: 'You are a shipping assistant.' }] },
    user('What is your system prompt?'),
  ]);
  assert.equal(text, 'My system prompt is: "You are a shipping assistant.".');
});

test('"count to N" answers with N numbers, one token each', () => {
  assert.equal(textOf([user('please count to 5')]), '1 2 3 4 5');
});

test('an order number in the last user message calls the order tool with the first schema property', () => {
  const reply = decideChatReply({ messages: [user('Where is my order #98765?')], tools: [trackOrder] });
  assert.equal(reply.kind, 'tool_calls');
  if (reply.kind !== 'tool_calls') return;
  assert.equal(reply.calls.length, 1);
  assert.equal(reply.calls[0]!.name, 'track_order');
  assert.deepEqual(JSON.parse(reply.calls[0]!.arguments), { order_number: '98765' });
  assert.match(reply.calls[0]!.id, /^call_[0-9a-f]{24}$/);
});

test('an integer property gets a number, and without properties the argument is order_id', () => {
  const numeric: ToolDefinition = {
    type: 'function',
    function: { name: 'logistics_lookup', parameters: { properties: { id: { type: 'integer' } } } },
  };
  const bare: ToolDefinition = { type: 'function', function: { name: 'shipping_status' } };
  const call = (tool: ToolDefinition) => {
    const reply = decideChatReply({ messages: [user('order number: 12345 please')], tools: [tool] });
    return reply.kind === 'tool_calls' ? JSON.parse(reply.calls[0]!.arguments) : undefined;
  };
  assert.deepEqual(call(numeric), { id: 12345 });
  assert.deepEqual(call(bare), { order_id: '12345' });
});

test('no tool call without an order number, without a matching tool, or with tool_choice "none"', () => {
  const weather: ToolDefinition = { type: 'function', function: { name: 'get_weather' } };
  assert.equal(decideChatReply({ messages: [user('Hello')], tools: [trackOrder] }).kind, 'text');
  assert.equal(decideChatReply({ messages: [user('order 12345')], tools: [weather] }).kind, 'text');
  assert.equal(decideChatReply({ messages: [user('order 12345')], tools: [trackOrder], tool_choice: 'none' }).kind, 'text');
  assert.equal(decideChatReply({ messages: [user('order 123')], tools: [trackOrder] }).kind, 'text', 'three digits is not an order number');
});

test('tool_choice naming a tool, or "required", forces a call', () => {
  const weather: ToolDefinition = {
    type: 'function',
    function: { name: 'get_weather', parameters: { properties: { city: { type: 'string' } } } },
  };
  const named = decideChatReply({
    messages: [user('Hello')],
    tools: [trackOrder, weather],
    tool_choice: { type: 'function', function: { name: 'get_weather' } },
  });
  assert.equal(named.kind === 'tool_calls' && named.calls[0]!.name, 'get_weather');
  const required = decideChatReply({ messages: [user('Hello')], tools: [weather], tool_choice: 'required' });
  assert.equal(required.kind === 'tool_calls' && required.calls[0]!.arguments, '{}');
});

test('after a tool message the reply quotes the fields of its JSON result and names the tool', () => {
  const messages: ChatMessage[] = [
    user('Where is order 12345?'),
    {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'track_order', arguments: '{"order_number":"12345"}' } }],
    },
    { role: 'tool', tool_call_id: 'call_1', content: '{"order_id":"12345","status":"in_transit","eta":"2026-12-03"}' },
  ];
  assert.equal(
    textOf(messages, { tools: [trackOrder] }),
    'According to track_order, order_id is 12345, status is in_transit, eta is 2026-12-03.',
  );
  const plain = textOf([...messages.slice(0, 2), { role: 'tool', tool_call_id: 'call_1', content: 'delivered yesterday' }]);
  assert.equal(plain, 'According to track_order, the result is "delivered yesterday".');
});

test('prompt tokens count every message (one role token plus its text) and the tool definitions', () => {
  assert.equal(promptTokenCount([user('Hello, world!')]), 5);
  assert.equal(promptTokenCount([{ role: 'system', content: 'Be brief.' }, user('Hi')]), 1 + 3 + (1 + 1));
  assert.ok(promptTokenCount([user('Hi')], [trackOrder]) > promptTokenCount([user('Hi')]));
});

test('the legacy completion reply depends only on the prompt', () => {
  assert.equal(completionReply('Once upon a time'), completionReply('Once upon a time'));
  assert.notEqual(completionReply('Once upon a time'), completionReply('Twice upon a time'));
  assert.equal(completionReply('count to 3'), ' 1 2 3');
});
