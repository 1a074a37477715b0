import { test } from 'node:test';
import assert from 'node:assert/strict';
import { completionReserve, estimateTokens, selectWindow } from '../../src/daemon/window.js';
import type { StoredMessage } from '../../src/store/sessions.js';

function turns(...contents: Array<[string, string]>): StoredMessage[] {
  return contents.flatMap(([q, a], i) => [
    { turn: i + 1, message: { role: 'user', content: q } },
    { turn: i + 1, message: { role: 'assistant', content: a } },
  ]);
}

test('the window keeps the newest whole turns up to the turn limit', () => {
  const history = turns(['q1', 'a1'], ['q2', 'a2'], ['q3', 'a3']);
  assert.deepEqual(
    selectWindow({ history, maxTurns: 2, tokenBudget: null }).map((m) => m.content),
    ['q2', 'a2', 'q3', 'a3'],
  );
  assert.deepEqual(selectWindow({ history, maxTurns: 10, tokenBudget: null }).length, 6);
  assert.deepEqual(selectWindow({ history, maxTurns: 0, tokenBudget: null }), []);
});

test('the window drops the oldest turns until the rest fit the token budget', () => {
  const history = turns(['x'.repeat(400), 'a1'], ['y'.repeat(40), 'a2'], ['z'.repeat(40), 'a3']);
  const perSmallTurn = estimateTokens({ role: 'user', content: 'y'.repeat(40) }) + estimateTokens({ role: 'assistant', content: 'a2' });
  const window = selectWindow({ history, maxTurns: 10, tokenBudget: perSmallTurn * 2 });
  assert.deepEqual(
    window.map((m) => m.content),
    ['y'.repeat(40), 'a2', 'z'.repeat(40), 'a3'],
  );
  assert.deepEqual(selectWindow({ history, maxTurns: 10, tokenBudget: perSmallTurn - 1 }), []);
  assert.deepEqual(selectWindow({ history, maxTurns: 10, tokenBudget: 0 }), []);
});

test('a window never starts with a tool result whose call was dropped', () => {
  const history: StoredMessage[] = [
    { turn: 1, message: { role: 'user', content: 'where is order 12345?' } },
    {
      turn: 1,
      message: { role: 'assistant', content: null, tool_calls: [{ id: 'c1', type: 'function', function: { name: 't', arguments: '{}' } }] },
    },
    { turn: 2, message: { role: 'tool', content: '{"status":"shipped"}', tool_call_id: 'c1' } },
    { turn: 2, message: { role: 'assistant', content: 'It shipped.' } },
    { turn: 3, message: { role: 'user', content: 'thanks' } },
    { turn: 3, message: { role: 'assistant', content: 'You are welcome.' } },
  ];
  assert.deepEqual(
    selectWindow({ history, maxTurns: 2, tokenBudget: null }).map((m) => m.content),
    ['thanks', 'You are welcome.'],
  );
  assert.equal(selectWindow({ history, maxTurns: 3, tokenBudget: null }).length, 6);
});

test('token estimates count text parts and tool calls, and the reply reserve follows max_tokens', () => {
  assert.equal(estimateTokens({ role: 'user', content: 'abcd'.repeat(10) }), 14);
  assert.equal(estimateTokens({ role: 'user', content: [{ type: 'text', text: 'abcd'.repeat(10) }] }), 14);
  assert.ok(estimateTokens({ role: 'assistant', content: null, tool_calls: [{ function: { arguments: 'x'.repeat(100) } }] }) > 25);
  assert.equal(completionReserve(300, 8192), 300);
  assert.equal(completionReserve(null, 8192), 1024);
  assert.equal(completionReserve(undefined, 1000), 250);
});
