import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Agent, request } from 'undici';
import { startSimulator } from '../../src/sim/server.js';
import { runDaemon } from './harness.js';

const HOLD_MS = 3000;

/** One figure of the daemon's /metrics text (the unlabelled series). */
function metric(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.slice(name.length + 1));
}

/** A streamed turn read as raw SSE bytes: when its last content event came, and how it ended. */
async function streamTurn(url: string, sessionId: string, content: string, dispatcher: Agent) {
  const res = await request(`${url}/v1/chat/completions`, {
    method: 'POST',
    dispatcher,
    headers: { 'content-type': 'application/json', 'x-session-id': sessionId },
    body: JSON.stringify({ model: 'cs-llm-sim', stream: true, messages: [{ role: 'user', content }] }),
  });
  assert.equal(res.statusCode, 200);
  let raw = '';
  let finished!: () => void;
  /** Resolves once the event with finish_reason has arrived: the whole reply is with the client. */
  const replied = new Promise<void>((resolve) => (finished = resolve));
  const done = (async () => {
    for await (const chunk of res.body) {
      raw += (chunk as Buffer).toString();
      if (/"finish_reason":"[a-z]+"/.test(raw)) finished();
    }
    finished();
    const reply = [...raw.matchAll(/^data: (\{.*\})$/gm)]
      .map((m) => (JSON.parse(m[1]!) as { choices?: Array<{ delta?: { content?: string } }> }).choices?.[0]?.delta?.content ?? '')
      .join('');
    return { raw, reply };
  })();
  return { replied, done };
}

test('a write lock held by another process for 3 s: the event loop keeps serving, and a turn streamed meanwhile ends in [DONE] and is stored once the lock goes', async (t) => {
  const sim = await startSimulator({ port: 0, tokensPerSecond: 200 });
  t.after(() => sim.close());
  const { state } = await runDaemon(t, sim.url);
  const dispatcher = new Agent({ keepAliveTimeout: 30_000 });
  t.after(() => dispatcher.close());
  const get = async (path: string) => {
    const res = await request(`${state.url}${path}`, { dispatcher });
    return { status: res.statusCode, text: await res.body.text() };
  };

  // A session that exists before the lock (its first turn also warms up the daemon's streaming path).
  const first = await streamTurn(state.url, 'before-lock', 'first turn', dispatcher);
  assert.match((await first.done).raw, /data: \[DONE\]/);
  await get('/metrics'); // starts the event-loop delay figure afresh

  const holder = new Database(state.db!);
  t.after(() => holder.close());
  holder.exec('BEGIN IMMEDIATE');
  const lockedAt = performance.now();

  // While the lock is held: /healthz every 20 ms, /metrics every 100 ms.
  const healthz: number[] = [];
  const scrapes: Array<{ waiting: number; loopDelayMax: number }> = [];
  let holding = true;
  const probe = (async () => {
    for (let i = 0; holding; i++) {
      const started = performance.now();
      assert.equal((await get('/healthz')).status, 200);
      healthz.push(performance.now() - started);
      if (i % 5 === 0) {
        const text = (await get('/metrics')).text;
        scrapes.push({
          waiting: metric(text, 'cs_llm_store_lock_waiting'),
          loopDelayMax: metric(text, 'cs_llm_event_loop_delay_max_seconds'),
        });
      }
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, 20 - (performance.now() - started))));
    }
  })();

  // Turns whose replies reach their clients while the lock is held: their commits must wait for it.
  const turns = [
    { sessionId: 'before-lock', content: 'second turn of before-lock' },
    { sessionId: 'during-lock', content: 'first turn of during-lock' },
  ];
  const streams = await Promise.all(turns.map((turn) => streamTurn(state.url, turn.sessionId, turn.content, dispatcher)));
  await Promise.all(streams.map((s) => s.replied));
  const remaining = HOLD_MS - (performance.now() - lockedAt);
  if (remaining > 0) await new Promise((resolve) => setTimeout(resolve, remaining));
  holder.exec('COMMIT');
  holding = false;
  await probe;
  const results = await Promise.all(streams.map((s) => s.done));
  const after = (await get('/metrics')).text;
  const loopDelayMaxMs = Math.max(...scrapes.map((s) => s.loopDelayMax), metric(after, 'cs_llm_event_loop_delay_max_seconds')) * 1000;
  const sorted = [...healthz].sort((a, b) => a - b);
  t.diagnostic(
    `during the ${HOLD_MS} ms lock: ${healthz.length} /healthz answers, p50 ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} ms, max ${sorted[sorted.length - 1]!.toFixed(1)} ms; daemon event-loop delay max ${loopDelayMaxMs.toFixed(1)} ms (incl. its 10 ms sampling interval); store writes waiting per scrape ${JSON.stringify(scrapes.map((s) => s.waiting))}`,
  );

  for (const [i, { sessionId, content }] of turns.entries()) {
    const { raw, reply } = results[i]!;
    assert.ok(reply.length > 0, `${sessionId} got its reply`);
    assert.doesNotMatch(raw, /"error"/, `${sessionId}: no error event`);
    assert.match(raw, /data: \[DONE\]\n\n$/, `${sessionId}: the stream ends in [DONE] once the turn is stored`);
    const stored = JSON.parse((await get(`/v1/sessions/${sessionId}`)).text) as { messages: Array<{ content: string }> };
    assert.deepEqual(
      stored.messages.slice(-2).map((m) => m.content),
      [content, reply],
      `${sessionId}: the turn streamed during the lock is stored`,
    );
  }

  // The commits waited on timers while requests went on: a scrape answered while a write was waiting.
  assert.ok(
    scrapes.some((s) => s.waiting > 0),
    'a /metrics scrape during the lock saw a store write waiting',
  );
  // One wait per write: the two commits are one write when their replies end in the same turn of the event
  // loop (their turns commit together, src/store/group-commit.ts), two otherwise.
  assert.ok(metric(after, 'cs_llm_store_lock_waits_total') >= 1, 'the commits met the lock');
  assert.equal(metric(after, 'cs_llm_store_lock_timeouts_total'), 0);
  assert.equal(metric(after, 'cs_llm_store_lock_waiting'), 0);

  // The freeze this guards against is the whole hold (3 s, the event loop inside SQLite's busy wait). The
  // 50 ms target is reported, not asserted: on a loaded 2-core machine timers run tens of ms late on their own.
  assert.ok(loopDelayMaxMs < HOLD_MS / 2, `the daemon's event loop was held up for ${loopDelayMaxMs.toFixed(0)} ms`);
});

test('a lock held past store.busyTimeoutMs: the turn whose reply was streamed ends with store_failed instead of [DONE], and nothing of it is stored', async (t) => {
  const sim = await startSimulator({ port: 0 });
  t.after(() => sim.close());
  const { state } = await runDaemon(t, sim.url, { env: { CS_LLM_STORE_BUSY_TIMEOUT_MS: '500' } });
  const dispatcher = new Agent();
  t.after(() => dispatcher.close());

  const holder = new Database(state.db!);
  t.after(() => holder.close());
  holder.exec('BEGIN IMMEDIATE');
  const { raw, reply } = await (await streamTurn(state.url, 'too-late', 'a turn that cannot be stored', dispatcher)).done;
  holder.exec('COMMIT');

  assert.ok(reply.length > 0, 'the reply was streamed');
  assert.match(raw, /"code":"store_failed"/);
  assert.doesNotMatch(raw, /data: \[DONE\]/, 'the client is not told the turn is done');
  const res = await request(`${state.url}/v1/sessions/too-late`, { dispatcher });
  assert.equal(res.statusCode, 404, await res.body.text());
  const metrics = await (await request(`${state.url}/metrics`, { dispatcher })).body.text();
  assert.equal(metric(metrics, 'cs_llm_store_lock_timeouts_total'), 1);
});
