import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDetectors, redactText } from '../../src/compliance/detectors.js';
import { rewriteRecord, rewriteText } from '../../src/compliance/records.js';
import { redactMessage, shouldRedactUpstream, upstreamKindOf } from '../../src/compliance/redact.js';

test('message redaction covers text, content parts and tool-call arguments, and returns the same object when clean', () => {
  const detectors = buildDetectors();
  const clean = { role: 'user', content: 'where is my parcel?' };
  assert.equal(redactMessage(clean, detectors), clean);
  assert.deepEqual(
    redactMessage(
      {
        role: 'user',
        content: [
          { type: 'text', text: 'me: x@y.example' },
          { type: 'image_url', image_url: { url: 'http://i' } },
        ],
      },
      detectors,
    ),
    {
      role: 'user',
      content: [
        { type: 'text', text: 'me: [EMAIL]' },
        { type: 'text', text: '[IMAGE]' },
      ],
    },
    'an image cannot be redacted: it is dropped by default',
  );
  const call = {
    role: 'assistant',
    content: null,
    tool_calls: [{ id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"phone":"+86 138 1234 5678"}' } }],
  };
  assert.deepEqual(redactMessage(call, detectors).tool_calls, [
    { id: 'c1', type: 'function', function: { name: 'lookup', arguments: '{"phone":"[PHONE]"}' } },
  ]);
});

test('upstream redaction follows the policy and the upstream kind (loopback URLs are local when no kind is known)', () => {
  assert.equal(upstreamKindOf('http://127.0.0.1:8000'), 'local');
  assert.equal(upstreamKindOf('http://localhost:8000/v1'), 'local');
  assert.equal(upstreamKindOf('https://api.example.com/v1'), 'remote');
  assert.equal(shouldRedactUpstream('never', { kind: 'remote', url: 'https://x.example' }), false);
  assert.equal(shouldRedactUpstream('always', { kind: 'local', url: 'http://127.0.0.1' }), true);
  assert.equal(shouldRedactUpstream('remote', { kind: 'local', url: 'https://x.example' }), false, 'a declared kind wins over the URL');
  assert.equal(shouldRedactUpstream('remote', { kind: 'remote', url: 'http://127.0.0.1' }), true);
  assert.equal(shouldRedactUpstream('remote', { url: 'https://x.example' }), true);
});

test('every text field is redacted by construction: a record kind nobody listed (a Responses API item) included', () => {
  const detectors = buildDetectors();
  const redact = (t: string) => redactText(t, detectors);
  const items = [
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: '电话13812345678' }] },
    { type: 'function_call', call_id: 'c1', name: 'lookup', arguments: '{"phone":"13812345678"}' },
    { type: 'function_call_output', call_id: 'c1', output: '收件人：王大锤' },
    { type: 'message', role: 'user', content: [{ type: 'input_image', image_url: 'data:image/png;base64,AAAA' }] },
  ];
  assert.deepEqual(rewriteRecord(items, redact, 'drop'), [
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: '电话[PHONE]' }] },
    { type: 'function_call', call_id: 'c1', name: 'lookup', arguments: '{"phone":"[PHONE]"}' },
    { type: 'function_call_output', call_id: 'c1', output: '收件人：[NAME]' },
    { type: 'message', role: 'user', content: [{ type: 'input_text', text: '[IMAGE]' }] },
  ]);
  const clean = [{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hello' }] }];
  assert.equal(rewriteRecord(clean, redact, 'drop'), clean, 'the same value when nothing changed');
});

test('JSON text stays JSON: a bare number that is redacted becomes a string', () => {
  const redact = (t: string) => redactText(t, buildDetectors());
  assert.equal(rewriteText('{"phone": 13812345678, "qty": 2}', redact), '{"phone": "[PHONE]", "qty": 2}');
  assert.equal(rewriteText('[13812345678]', redact), '["[PHONE]"]');
  assert.equal(rewriteText('{"order": 2024051712345678}', redact), '{"order": 2024051712345678}', 'unchanged when nothing is found');
  assert.equal(rewriteText('not json 13812345678', redact), 'not json [PHONE]');
});

test("a participant's name is stored as [NAME] while names are redacted; a tool's name is kept", () => {
  assert.equal(redactMessage({ role: 'user', name: 'wei', content: 'hi' }, buildDetectors()).name, '[NAME]');
  assert.equal(redactMessage({ role: 'user', name: 'wei@example.com', content: 'hi' }, buildDetectors({ name: false })).name, '[EMAIL]');
  assert.equal(redactMessage({ role: 'tool', name: 'lookup', tool_call_id: 'c', content: 'ok' }, buildDetectors()).name, 'lookup');
  const image = { role: 'user', content: [{ type: 'image_url', image_url: { url: 'http://i' } }] };
  assert.deepEqual(redactMessage(image, []).content, [{ type: 'text', text: '[IMAGE]' }], 'dropped with redaction off too');
  assert.equal(redactMessage(image, buildDetectors(), { attachments: 'keep' }), image);
});
