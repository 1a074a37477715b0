import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readUsage, StreamMeter, type TokenFields } from '../../src/metrics/usage.js';

test('token counts come from a non-streaming reply usage', () => {
  const body = Buffer.from(
    JSON.stringify({
      id: 'x',
      choices: [{ message: { content: 'the word "usage" in text' } }],
      usage: { prompt_tokens: 12, total_tokens: 19, completion_tokens: 7 },
    }),
  );
  const into: TokenFields = {};
  readUsage(body, into);
  assert.deepEqual(into, { promptTokens: 12, completionTokens: 7 });
});

test('a reply without usage leaves the counts unset', () => {
  const into: TokenFields = {};
  readUsage(Buffer.from('{"choices":[]}'), into);
  assert.deepEqual(into, {});
});

function sse(...payloads: unknown[]): Buffer {
  return Buffer.from(payloads.map((p) => `data: ${typeof p === 'string' ? p : JSON.stringify(p)}\n\n`).join(''));
}

test('a stream without usage counts its content and tool-call deltas as completion tokens', () => {
  const meter = new StreamMeter(0);
  meter.push(
    sse({ choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] }, { choices: [{ index: 0, delta: { content: 'Hel' } }] }),
  );
  meter.push(
    sse({ choices: [{ index: 0, delta: { content: 'lo' } }] }, { choices: [{ index: 0, delta: { tool_calls: [{ index: 0 }] } }] }),
  );
  meter.push(sse({ choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] }, '[DONE]'));
  const into: TokenFields = {};
  meter.finish(into);
  assert.equal(into.completionTokens, 3);
  assert.equal(into.promptTokens, undefined);
  assert.ok(into.ttftMs !== undefined && into.ttftMs >= 0);
});

test('a stream with a usage chunk reports its usage, not the counted deltas', () => {
  const meter = new StreamMeter(0);
  meter.push(sse({ choices: [{ index: 0, delta: { content: 'Hi' } }], usage: null }));
  meter.push(sse({ choices: [], usage: { prompt_tokens: 30, completion_tokens: 5, total_tokens: 35 } }, '[DONE]'));
  const into: TokenFields = {};
  meter.finish(into);
  assert.deepEqual({ p: into.promptTokens, c: into.completionTokens }, { p: 30, c: 5 });
});

test('a stream that sent nothing reports no time to first token', () => {
  const into: TokenFields = {};
  new StreamMeter(0).finish(into);
  assert.deepEqual(into, {});
});
