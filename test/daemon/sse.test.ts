import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseEventTooLongError, SseSplitter, TurnAccumulator, replyMessage } from '../../src/daemon/sse.js';

const chunk = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

test('events split across chunks come out whole, byte for byte', () => {
  const text = `${chunk({ role: 'assistant', content: '' })}${chunk({ content: 'Hel' })}${chunk({ content: 'lo' })}data: [DONE]\n\n`;
  const bytes = Buffer.from(text);
  for (const size of [1, 3, 7, 64, bytes.length]) {
    const splitter = new SseSplitter();
    const events = [];
    for (let i = 0; i < bytes.length; i += size) events.push(...splitter.push(bytes.subarray(i, i + size)));
    assert.equal(Buffer.concat(events.map((e) => e.raw)).toString(), text, `chunk size ${size}`);
    assert.deepEqual(events.map((e) => e.data).slice(-1), ['[DONE]']);
    assert.equal(splitter.leftover, 0);
  }
});

test('CRLF separators, comments and multi-line data are understood', () => {
  const splitter = new SseSplitter();
  const events = splitter.push(Buffer.from(': keep-alive\r\n\r\ndata: a\r\ndata: b\r\n\r\ndata:[DONE]\n\n'));
  assert.deepEqual(
    events.map((e) => e.data),
    [null, 'a\nb', '[DONE]'],
  );
  assert.equal(splitter.push(Buffer.from('data: incomplete')).length, 0);
  assert.equal(splitter.leftover, 16);
});

test('one-line data events read the same with LF or CRLF, with or without the space, and empty data stays empty', () => {
  const splitter = new SseSplitter();
  const events = splitter.push(Buffer.from('data: {"a":"é"}\n\ndata:x\r\n\r\ndata:\n\ndata: y\nid: 3\n\nevent: ping\n\n'));
  assert.deepEqual(
    events.map((e) => e.data),
    ['{"a":"é"}', 'x', '', 'y', null],
  );
});

test('the accumulator rebuilds content and tool calls from deltas of choice 0', () => {
  const acc = new TurnAccumulator();
  for (const line of [
    { choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] },
    { choices: [{ index: 0, delta: { content: 'Let me check. ' } }] },
    { choices: [{ index: 1, delta: { content: 'other choice' } }] },
    {
      choices: [
        {
          index: 0,
          delta: { tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'track_', arguments: '{"order' } }] },
        },
      ],
    },
    { choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { name: 'order', arguments: '_id":"1"}' } }] } }] },
    { choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: 'call_2', function: { name: 'b', arguments: '{}' } }] } }] },
    { choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] },
    { choices: [], usage: { total_tokens: 5 } },
  ]) {
    acc.add(line);
  }
  assert.deepEqual(acc.message(), {
    role: 'assistant',
    content: 'Let me check. ',
    tool_calls: [
      { id: 'call_1', type: 'function', function: { name: 'track_order', arguments: '{"order_id":"1"}' } },
      { id: 'call_2', type: 'function', function: { name: 'b', arguments: '{}' } },
    ],
  });
  assert.equal(acc.finishReason, 'tool_calls');
  assert.equal(acc.error, null);
});

test('an in-stream error object is noticed, and a reply with no content stays null', () => {
  const acc = new TurnAccumulator();
  acc.add({ error: { message: 'boom' } });
  assert.deepEqual(acc.error, { message: 'boom' });
  assert.deepEqual(new TurnAccumulator().message(), { role: 'assistant', content: null });
});

test('the reply message of a non-streaming completion is choice 0', () => {
  assert.deepEqual(replyMessage({ choices: [{ index: 0, message: { role: 'assistant', content: 'hi', tool_calls: [] } }] }), {
    role: 'assistant',
    content: 'hi',
  });
  assert.equal(replyMessage({ choices: [] }), null);
  assert.equal(replyMessage({ error: 'x' }), null);
});

test('an event that grows past 1 MiB without ending is refused, however it arrives; one just under the limit passes', () => {
  const limit = 1024 * 1024;
  const under = `data: ${'x'.repeat(limit - 10)}\n\n`;
  for (const size of [64 * 1024, limit + 100]) {
    const splitter = new SseSplitter();
    const bytes = Buffer.from(`${under}data: ${'y'.repeat(limit)}`);
    const events: unknown[] = [];
    assert.throws(() => {
      for (let i = 0; i < bytes.length; i += size) events.push(...splitter.push(bytes.subarray(i, i + size)));
    }, SseEventTooLongError);
    assert.ok(events.length <= 1, 'the event under the limit may come out first');
  }
  const splitter = new SseSplitter();
  assert.equal(splitter.push(Buffer.from(under)).length, 1);
});
