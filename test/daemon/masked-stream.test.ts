// Restoring placeholders in a masked upstream's stream (src/daemon/masked-stream.ts, compliance/masking.ts):
// whatever the chunk boundaries, the client reads the values, and only a possible placeholder's start waits.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDetectors } from '../../src/compliance/detectors.js';
import { Masker, placeholderPrefixAt, StreamRestorer } from '../../src/compliance/masking.js';
import { MaskedStream } from '../../src/daemon/masked-stream.js';
import { SseSplitter } from '../../src/daemon/sse.js';

function masker(): Masker {
  const m = new Masker(buildDetectors());
  assert.equal(m.maskText('电话13812345678，138 1234 5678，邮箱li@qq.com'), '电话<PHONE_1>，<PHONE_1>，邮箱<EMAIL_1>');
  return m;
}

const event = (delta: Record<string, unknown>, finish: string | null = null) =>
  `data: ${JSON.stringify({ object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;

/** The text the client reads from the output events: content and tool arguments of choice 0. */
function read(out: Buffer): { content: string; args: string; done: boolean } {
  let content = '';
  let args = '';
  let done = false;
  for (const e of new SseSplitter().push(out)) {
    if (e.data === '[DONE]') done = true;
    else if (e.data !== null) {
      const delta = (
        JSON.parse(e.data) as { choices: Array<{ delta: { content?: string; tool_calls?: Array<{ function: { arguments: string } }> } }> }
      ).choices[0]?.delta;
      content += delta?.content ?? '';
      for (const c of delta?.tool_calls ?? []) args += c.function.arguments;
    }
  }
  return { content, args, done };
}

const STREAM =
  event({ role: 'assistant', content: '' }) +
  ['好的，电话', '<', 'PHONE', '_1', '>', '，邮箱 <EMAIL_1> 已记下；a < b 也', '<'].map((content) => event({ content })).join('') +
  event({ tool_calls: [{ index: 0, id: 'c', type: 'function', function: { name: 'f', arguments: '{"p":"<PHO' } }] }) +
  event({ tool_calls: [{ index: 0, function: { arguments: 'NE_1>"}' } }] }) +
  event({}, 'stop') +
  'data: [DONE]\n\n';

test('placeholders are restored whatever the chunk boundaries, and what was held goes out by the finish', () => {
  const bytes = Buffer.from(STREAM);
  for (let cut = 1; cut < bytes.length; cut += 7) {
    const stream = new MaskedStream(masker());
    const parts = [stream.push(bytes.subarray(0, cut)), stream.push(bytes.subarray(cut))].filter((b): b is Buffer => b !== null);
    const got = read(Buffer.concat(parts));
    assert.equal(got.content, '好的，电话13812345678，邮箱 li@qq.com 已记下；a < b 也<', `cut at ${cut}`);
    assert.equal(got.args, '{"p":"13812345678"}', `cut at ${cut}`);
    assert.ok(got.done);
  }
});

test('an event without "<" passes as its own bytes while nothing is held', () => {
  const stream = new MaskedStream(masker());
  const plain = Buffer.from(event({ content: 'hello' }));
  assert.deepEqual(stream.push(plain), plain);
});

test('a tail held when the stream ends without a finish goes out before [DONE]', () => {
  const stream = new MaskedStream(masker());
  const out = stream.push(Buffer.from(event({ content: '电话<PHONE' }) + 'data: [DONE]\n\n'))!;
  assert.deepEqual(read(out), { content: '电话<PHONE', args: '', done: true });
});

test('only a tail that could still become a placeholder is held', () => {
  assert.equal(placeholderPrefixAt('abc <PHONE_'), 4);
  assert.equal(placeholderPrefixAt('abc <'), 4);
  assert.equal(placeholderPrefixAt('abc <PHONE_1>'), -1);
  assert.equal(placeholderPrefixAt('a < b'), -1);
  assert.equal(placeholderPrefixAt('<html'), -1, 'lower case starts no label');
  const r = new StreamRestorer(masker());
  assert.equal(r.push('x <EM'), 'x ');
  assert.equal(r.push('AIL_1> y <PHONE_9>'), 'li@qq.com y <PHONE_9>', 'a placeholder it never gave stays');
});

test("a whole reply's strings are restored, tool-call arguments included", () => {
  const m = masker();
  const reply = {
    choices: [
      { message: { content: '电话<PHONE_1>', tool_calls: [{ id: 'c', function: { name: 'f', arguments: '{"to":"<EMAIL_1>"}' } }] } },
    ],
  };
  assert.deepEqual(m.restoreRecord(reply), {
    choices: [
      { message: { content: '电话13812345678', tool_calls: [{ id: 'c', function: { name: 'f', arguments: '{"to":"li@qq.com"}' } }] } },
    ],
  });
});
