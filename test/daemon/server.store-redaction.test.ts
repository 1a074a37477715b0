// Everything the daemon stores is redacted (issue 17.4): a participant's `name`, every text of a content
// array, tool-call arguments and tool results; images and files become a placeholder unless
// store.attachments is "keep"; with a key, the name is encrypted with the content. Driven through the real
// daemon over HTTP with the real openai client; the raw database and WAL bytes are searched.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type OpenAI from 'openai';
import { lifecycleLogger } from '../../src/daemon/main.js';
import { startHarness } from './harness.js';
import { foundIn } from '../helpers/db-files.js';

// A base64 image whose bytes spell a marker, so that the files can be searched for it.
const IMAGE_MARKER = Buffer.from('IMAGE-BYTES-MARKER').toString('base64');
const IMAGE_URL = `data:image/png;base64,${IMAGE_MARKER}`;
const KEY = Buffer.alloc(32, 9).toString('base64');

type Stored = { messages: Array<Record<string, unknown> & { role: string }> };

async function stored(url: string, id: string): Promise<Stored> {
  return (await (await fetch(`${url}/v1/sessions/${id}`)).json()) as Stored;
}

const customerTurn: OpenAI.ChatCompletionMessageParam[] = [
  {
    role: 'user',
    name: '张伟',
    content: [
      { type: 'text', text: '这是包裹照片，我的手机13812345678' },
      { type: 'image_url', image_url: { url: IMAGE_URL } },
    ],
  },
];

const toolRound: OpenAI.ChatCompletionMessageParam[] = [
  { role: 'user', content: '查一下我的快递' },
  {
    role: 'assistant',
    content: null,
    tool_calls: [
      { id: 'call_1', type: 'function', function: { name: 'lookup_shipment', arguments: '{"phone": 13987654321, "city": "上海"}' } },
    ],
  },
  { role: 'tool', tool_call_id: 'call_1', content: '{"receiver": "收件人：王大锤", "address": "寄到上海市浦东新区世纪大道100号"}' },
];

test('a stored turn keeps no personal data in any field: name, content parts, tool arguments and results; images become [IMAGE]', async (t) => {
  const h = await startHarness(t);
  await h.client({ sessionId: 'fields' }).chat.completions.create({ model: 'cs-llm-sim', messages: customerTurn });
  await h.client({ sessionId: 'fields' }).chat.completions.create({ model: 'cs-llm-sim', messages: toolRound });

  const { messages } = await stored(h.daemon.url, 'fields');
  assert.equal(messages[0]!.name, '[NAME]');
  assert.deepEqual(messages[0]!.content, [
    { type: 'text', text: '这是包裹照片，我的手机[PHONE]' },
    { type: 'text', text: '[IMAGE]' },
  ]);
  const call = messages.find((m) => m.role === 'assistant' && Array.isArray(m.tool_calls))!;
  const args = (call.tool_calls as Array<{ function: { name: string; arguments: string } }>)[0]!.function;
  assert.equal(args.name, 'lookup_shipment', 'tool names are kept');
  assert.deepEqual(JSON.parse(args.arguments), { phone: '[PHONE]', city: '上海' }, 'the arguments stay valid JSON');
  const result = messages.find((m) => m.role === 'tool')!;
  assert.equal(result.tool_call_id, 'call_1');
  assert.deepEqual(JSON.parse(result.content as string), { receiver: '收件人：[NAME]', address: '寄到[ADDRESS]' });

  const file = h.daemon.store.file;
  await h.daemon.close('test over');
  for (const secret of ['张伟', '13812345678', '13987654321', '王大锤', '世纪大道', IMAGE_MARKER]) {
    assert.deepEqual(foundIn(file, secret), [], `${secret} is in neither the database nor its WAL`);
  }
});

test('the next turn gets the stored window with the placeholders, and the engine accepts it', async (t) => {
  const h = await startHarness(t);
  const client = h.client({ sessionId: 'window' });
  await client.chat.completions.create({ model: 'cs-llm-sim', messages: customerTurn });
  const next = await client.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: '收到了吗？' }] });
  assert.equal(next.choices[0]!.finish_reason, 'stop');
  assert.equal((await stored(h.daemon.url, 'window')).messages.length, 4);
});

test('store.attachments "keep" stores the image as sent; with names not redacted, a key encrypts the name', async (t) => {
  const h = await startHarness(t, { config: { store: { attachments: 'keep', key: KEY, redaction: { name: false } } } });
  await h.client({ sessionId: 'kept' }).chat.completions.create({ model: 'cs-llm-sim', messages: customerTurn });
  const { messages } = await stored(h.daemon.url, 'kept');
  assert.equal(messages[0]!.name, '张伟', 'read back with the key');
  assert.deepEqual((messages[0]!.content as unknown[])[1], { type: 'image_url', image_url: { url: IMAGE_URL } });
  const file = h.daemon.store.file;
  await h.daemon.close('test over');
  assert.deepEqual(foundIn(file, '张伟'), [], 'the name is encrypted with the content');
  assert.deepEqual(foundIn(file, IMAGE_MARKER), [], 'and so is the kept image');
});

test('daemon.logContent logs each stored turn as it was stored: redacted, the image a placeholder', async (t) => {
  const lines: string[] = [];
  // The logger the daemon process writes daemon.log with.
  const h = await startHarness(t, { config: { daemon: { logContent: true } }, log: lifecycleLogger((line) => lines.push(line)) });
  await h.client({ sessionId: 'logged' }).chat.completions.create({ model: 'cs-llm-sim', messages: customerTurn });
  await h.client({ sessionId: 'logged' }).chat.completions.create({ model: 'cs-llm-sim', messages: toolRound });
  // Items added to a conversation are stored messages too.
  const created = await fetch(`${h.daemon.url}/v1/conversations`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ items: [{ type: 'message', role: 'user', content: '我的手机13812345678' }] }),
  });
  const { id } = (await created.json()) as { id: string };
  await fetch(`${h.daemon.url}/v1/conversations/${id}/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ items: [{ type: 'message', role: 'user', content: '另一个号码13987654321' }] }),
  });
  const conversation = lines.filter((line) => line.includes(`session ${id} stored`));
  assert.equal(conversation.length, 2, 'the created conversation and its added item');
  assert.ok(conversation[0]!.includes('我的手机[PHONE]') && conversation[1]!.includes('另一个号码[PHONE]'), conversation.join(''));
  const stored = lines.filter((line) => line.includes('session logged stored'));
  assert.equal(stored.length, 2, 'one line per stored turn');
  assert.ok(
    stored[0]!.includes('这是包裹照片，我的手机[PHONE]') && stored[0]!.includes('[IMAGE]') && stored[0]!.includes('"name":"[NAME]"'),
    stored[0],
  );
  assert.ok(stored[1]!.includes('收件人：[NAME]'), stored[1]);
  const log = lines.join('');
  for (const secret of ['张伟', '13812345678', '13987654321', '王大锤', '世纪大道', IMAGE_MARKER]) {
    assert.ok(!log.includes(secret), `${secret} is not in the log`);
  }
});
