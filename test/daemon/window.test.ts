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

// A Responses client runs its function calls between two turns: the call ends one turn, the result starts the next.
function clientToolTurns(): StoredMessage[] {
  const call = { id: 'c1', type: 'function', function: { name: 'track', arguments: '{"order":"12345"}' } };
  return [
    { turn: 1, message: { role: 'user', content: 'hello' } },
    { turn: 1, message: { role: 'assistant', content: 'Hi.' } },
    { turn: 2, message: { role: 'user', content: 'where is order 12345?' } },
    { turn: 2, message: { role: 'assistant', content: null, tool_calls: [call] } },
    { turn: 3, message: { role: 'tool', content: '{"status":"shipped"}', tool_call_id: 'c1' } },
    { turn: 3, message: { role: 'assistant', content: 'It shipped.' } },
  ];
}

test('a turn that starts with tool results is never kept without the turn that made the calls', () => {
  const history = clientToolTurns();
  // Two turns fit the limit, but the last one alone would start with a result: both go.
  assert.deepEqual(selectWindow({ history, maxTurns: 1, tokenBudget: null }), []);
  assert.deepEqual(
    selectWindow({ history, maxTurns: 2, tokenBudget: null }).map((m) => m.role),
    ['user', 'assistant', 'tool', 'assistant'],
  );
  const lastTwo = history.slice(2).reduce((n, s) => n + estimateTokens(s.message), 0);
  assert.equal(selectWindow({ history, maxTurns: 10, tokenBudget: lastTwo }).length, 4);
  assert.equal(selectWindow({ history, maxTurns: 10, tokenBudget: lastTwo - 1 }).length, 0);
});

test('with new messages that start with tool results the turn holding their calls is kept even over the budget', () => {
  const history = clientToolTurns().slice(0, 4);
  const window = selectWindow({ history, maxTurns: 10, tokenBudget: 1, keepLast: true });
  assert.deepEqual(
    window.map((m) => m.role),
    ['user', 'assistant'],
  );
  assert.equal((window[1]!.tool_calls as unknown[]).length, 1);
  assert.deepEqual(selectWindow({ history, maxTurns: 10, tokenBudget: 1 }), []);
  // The last stored turn answered results with another call: back to the turn that made the first one.
  const chained = clientToolTurns();
  chained[5] = {
    turn: 3,
    message: {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'c2', type: 'function', function: { name: 'track', arguments: '{}' } }],
    },
  };
  assert.deepEqual(
    selectWindow({ history: chained, maxTurns: 1, tokenBudget: null, keepLast: true }).map((m) => m.role),
    ['user', 'assistant', 'tool', 'assistant'],
  );
});
