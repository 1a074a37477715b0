import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDetectors } from '../../src/compliance/detectors.js';
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
        { type: 'image_url', image_url: { url: 'http://i' } },
      ],
    },
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
