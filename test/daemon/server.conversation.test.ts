import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startHarness, text } from './harness.js';

test('a three-turn conversation remembers the first turn when asked in the third', async (t) => {
  const h = await startHarness(t);
  const chat = h.client({ sessionId: 'conv-1' });
  const model = 'cs-llm-sim';
  const r1 = await chat.chat.completions.create({
    model,
    messages: [{ role: 'user', content: 'Hello, my name is Ada and I need help with an order.' }],
  });
  assert.match(text(r1), /Turn 1/);
  const r2 = await chat.chat.completions.create({ model, messages: [{ role: 'user', content: 'It has not arrived yet.' }] });
  assert.match(text(r2), /Turn 2/);
  const r3 = await chat.chat.completions.create({ model, messages: [{ role: 'user', content: 'What is my name?' }] });
  assert.equal(text(r3), 'Your name is Ada.');
  const r4 = await chat.chat.completions.create({ model, messages: [{ role: 'user', content: 'What was my first message?' }] });
  assert.match(text(r4), /Your first message was: "Hello, my name is Ada/);

  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/conv-1`)).json()) as {
    messages: Array<{ role: string; content: string }>;
    id: string;
  };
  assert.equal(stored.id, 'conv-1');
  assert.deepEqual(
    stored.messages.map((m) => m.role),
    ['user', 'assistant', 'user', 'assistant', 'user', 'assistant', 'user', 'assistant'],
  );
  assert.equal(stored.messages[5]!.content, 'Your name is Ada.');
});

test('the profile system prompt leads every request and is never stored', async (t) => {
  const h = await startHarness(t, { config: { profiles: { default: { systemPrompt: 'You help customers of Acme.' } } } });
  const chat = h.client({ sessionId: 'sys' });
  await chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] });
  const r = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'What is your system prompt?' }],
  });
  assert.equal(text(r), 'My system prompt is: "You help customers of Acme.".');
  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/sys`)).json()) as { messages: Array<{ role: string }> };
  assert.equal(
    stored.messages.some((m) => m.role === 'system'),
    false,
  );
});

test('without X-Session-Id the daemon is a stateless proxy that stores nothing', async (t) => {
  const h = await startHarness(t);
  const chat = h.client();
  const r = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [
      { role: 'user', content: 'my name is Grace' },
      { role: 'assistant', content: 'Hello Grace' },
      { role: 'user', content: 'What is my name?' },
    ],
  });
  assert.equal(text(r), 'Your name is Grace.');
  const list = (await (await fetch(`${h.daemon.url}/v1/sessions`)).json()) as { data: unknown[] };
  assert.deepEqual(list.data, []);
});

test('the reply carries the session id back and a header with the daemon overhead', async (t) => {
  const h = await startHarness(t);
  const res = await fetch(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'echo.me:1' },
    body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] }),
  });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('x-session-id'), 'echo.me:1');
  assert.ok(Number(res.headers.get('x-cs-llm-overhead-ms')) >= 0);
  await res.json();
});

test('the history window keeps only the last N turns', async (t) => {
  const h = await startHarness(t, { config: { profiles: { default: { historyTurns: 2 } } } });
  const chat = h.client({ sessionId: 'window' });
  for (const content of ['first: apples', 'second: pears', 'third: plums']) {
    await chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content }] });
  }
  const r = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'What was my first message?' }],
  });
  // turns 2 and 3 are in the window, turn 1 is not (it stays in the store)
  assert.match(text(r), /Your first message was: "second: pears"/);
  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/window`)).json()) as { messages: unknown[] };
  assert.equal(stored.messages.length, 8);
});

test('the history window drops old turns that would not fit the context minus max_tokens', async (t) => {
  const h = await startHarness(t, { config: { profiles: { default: { contextTokens: 450, systemPrompt: '' } } } });
  const chat = h.client({ sessionId: 'tokens' });
  // about 140 estimated tokens each; the replies are cut at 10 tokens, so a turn is about 155
  const long = (tag: string) => `${tag} ${'lorem ipsum dolor sit amet '.repeat(20)}`;
  await chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: long('alpha') }], max_tokens: 10 });
  await chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: long('beta') }], max_tokens: 10 });
  const fits = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'What was my first message?' }],
    max_tokens: 150,
  });
  assert.match(text(fits), /Your first message was: "beta/);
  const none = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'What was my first message?' }],
    max_tokens: 400,
  });
  assert.match(text(none), /This is your first message/);
});

test('an expired session is served as a new one', async (t) => {
  let clock = Date.now();
  const h = await startHarness(t, { now: () => clock, config: { profiles: { default: { ttlSeconds: 60 } } } });
  const chat = h.client({ sessionId: 'ttl' });
  await chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'my name is Linus' }] });
  clock += 59_000;
  assert.equal(
    text(await chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'what is my name?' }] })),
    'Your name is Linus.',
  );
  clock += 61_000;
  assert.match(
    text(await chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'what is my name?' }] })),
    /I do not know your name yet/,
  );
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/ttl`)).status, 200);
  clock += 61_000;
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/ttl`)).status, 404);
});

test('two sessions in parallel stay separate', async (t) => {
  const h = await startHarness(t, { sim: { ttftMs: 20 } });
  const names = ['Alice', 'Bob', 'Carol', 'Dave'];
  await Promise.all(
    names.map((name) =>
      h
        .client({ sessionId: `p-${name}` })
        .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: `my name is ${name}` }] }),
    ),
  );
  const answers = await Promise.all(
    names.map((name) =>
      h
        .client({ sessionId: `p-${name}` })
        .chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'what is my name?' }] }),
    ),
  );
  assert.deepEqual(
    answers.map(text),
    names.map((n) => `Your name is ${n}.`),
  );
});

test('requests on the same session in parallel are served one after the other', async (t) => {
  const h = await startHarness(t, { sim: { ttftMs: 30 } });
  const chat = h.client({ sessionId: 'serial' });
  const replies = await Promise.all(
    [1, 2, 3, 4].map(() =>
      chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'how many messages have I sent?' }] }),
    ),
  );
  // Each request saw the turns stored before it: 1, 2, 3 and 4 user messages, in some order.
  const counts = replies.map((r) => Number(/sent (\d+)/.exec(text(r))?.[1])).sort();
  assert.deepEqual(counts, [1, 2, 3, 4]);
  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/serial`)).json()) as { messages: unknown[] };
  assert.equal(stored.messages.length, 8);
});

test('a request that waits too long for its session gets 409 with a clear message', async (t) => {
  const h = await startHarness(t, { sim: { ttftMs: 1500 }, config: { daemon: { sessionWaitMs: 50 } } });
  const chat = h.client({ sessionId: 'busy' });
  const first = chat.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'slow one' }] });
  // The first request holds the session's lock once it has reached the engine.
  while (h.sim.stats().running + h.sim.stats().waiting === 0) await new Promise((r) => setImmediate(r));
  const second = await fetch(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'busy' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'impatient' }] }),
  });
  assert.equal(second.status, 409);
  const body = (await second.json()) as { error: { code: string; message: string } };
  assert.equal(body.error.code, 'session_busy');
  assert.match(body.error.message, /session busy is busy/);
  await first;
});

test('more than admission.maxQueue requests waiting on one session get 429 at once; the others are served in turn', async (t) => {
  const h = await startHarness(t, { sim: { ttftMs: 300 }, config: { daemon: { admission: { maxQueue: 2 } } } });
  const ask = () =>
    fetch(`${h.daemon.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': 'crowded' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'me too' }] }),
    });
  const first = ask();
  // The first one holds the session (it reached the engine); two may wait behind it, the next two may not.
  while (h.sim.stats().running + h.sim.stats().waiting === 0) await new Promise((r) => setImmediate(r));
  const waiting = [ask(), ask()];
  await new Promise((r) => setTimeout(r, 50));
  const refused = await Promise.all([ask(), ask()]);
  for (const res of refused) {
    assert.equal(res.status, 429);
    assert.match(res.headers.get('retry-after') ?? '', /^[1-9]\d*$/);
    const body = (await res.json()) as { error: { code: string; type: string; message: string } };
    assert.equal(body.error.code, 'session_queue_full');
    assert.equal(body.error.type, 'rate_limit_error');
    assert.match(body.error.message, /crowded/);
  }
  for (const res of await Promise.all([first, ...waiting])) assert.equal(res.status, 200);
  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/crowded`)).json()) as { turns: number };
  assert.equal(stored.turns, 3);
});

test('X-Profile picks the profile: its system prompt and its own window', async (t) => {
  const h = await startHarness(t, {
    config: {
      profiles: { default: { systemPrompt: 'You are the default.' }, billing: { systemPrompt: 'You handle invoices.', historyTurns: 1 } },
    },
  });
  const billing = h.client({ sessionId: 'inv', profile: 'billing' });
  const r = await billing.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'What is your system prompt?' }],
  });
  assert.equal(text(r), 'My system prompt is: "You handle invoices.".');
  await billing.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'second' }] });
  const first = await billing.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'What was my first message?' }],
  });
  assert.equal(text(first), 'Your first message was: "second".');
  const listed = (await (await fetch(`${h.daemon.url}/v1/sessions/inv`)).json()) as { profile: string };
  assert.equal(listed.profile, 'billing');
});
