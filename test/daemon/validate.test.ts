// The chat request check's fast path (#21) accepts exactly what the schema accepts: every body below gets the
// schema's verdict, and a refused one the schema's message naming the field.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApiError } from '../../src/daemon/api-error.js';
import { chatRequestSchema, validateChatRequest } from '../../src/daemon/validate.js';

const user = { role: 'user', content: 'hi' };
const bodies: unknown[] = [
  { messages: [user] },
  { model: 'm', stream: true, max_tokens: 16, messages: [{ role: 'system', content: 's' }, user], temperature: 0.2, tools: [] },
  { messages: [user], stream: null, max_tokens: null, max_completion_tokens: 5 },
  {
    messages: [
      { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function' }] },
      { role: 'tool', content: 'r', tool_call_id: 'c' },
    ],
  },
  {
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: 'hi' },
          { type: 'image_url', image_url: { url: 'x' } },
        ],
      },
    ],
  },
  { messages: [{ role: 'user', name: 'ada', content: 'hi' }] },
  { messages: [] },
  { messages: 'hi' },
  {},
  { messages: [user], model: '' },
  { messages: [user], model: 3 },
  { messages: [user], stream: 'yes' },
  { messages: [user], max_tokens: 0 },
  { messages: [user], max_tokens: 1.5 },
  { messages: [user], max_tokens: 2 ** 60 },
  { messages: [user], max_completion_tokens: -1 },
  { messages: [{ role: 'robot', content: 'hi' }] },
  { messages: [{ content: 'hi' }] },
  { messages: [{ role: 'user', content: 3 }] },
  { messages: [{ role: 'user', content: [{ text: 'no type' }] }] },
  { messages: [{ role: 'user', content: ['text'] }] },
  { messages: [{ role: 'assistant', tool_calls: {} }] },
  { messages: [{ role: 'assistant', tool_calls: [1] }] },
  { messages: [{ role: 'assistant', tool_calls: [[]] }] },
  { messages: [{ role: 'user', content: 'hi', name: null }] },
  { messages: [{ role: 'tool', content: 'r', tool_call_id: 7 }] },
  { messages: [null] },
  { messages: [[user]] },
];

test('the chat request check gives every body the schema verdict, and refuses with the field the schema names', () => {
  for (const body of bodies) {
    const expected = chatRequestSchema().safeParse(body);
    let got: unknown;
    try {
      got = validateChatRequest(body);
    } catch (err) {
      assert.ok(err instanceof ApiError, String(err));
      assert.equal(expected.success, false, `${JSON.stringify(body)} was refused: ${err.message}`);
      assert.match(err.message, new RegExp(`^invalid ${err.param?.replace(/[[\].]/g, '\\$&')}: `));
      continue;
    }
    assert.equal(expected.success, true, `${JSON.stringify(body)} was accepted`);
    assert.equal(got, body, 'the body itself comes back, unknown fields and all');
  }
  assert.throws(() => validateChatRequest([user]), /must be a JSON object/);
});
