import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { request } from 'undici';
import type { RequestRecord } from '../../src/daemon/observers.js';
import { startHarness, type Harness } from './harness.js';

function storedCount(h: Harness, sessionId: string): number {
  // A separate connection, as another process would read it.
  const db = new Database(h.daemon.store.file, { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) AS n FROM messages WHERE session_id = ?').get(sessionId) as { n: number }).n;
  } finally {
    db.close();
  }
}

function nextRecord(h: Harness, match: (r: RequestRecord) => boolean): Promise<RequestRecord> {
  return new Promise((resolve) => {
    const off = h.daemon.onRequest((r) => {
      if (match(r)) {
        off();
        resolve(r);
      }
    });
  });
}

test('a streamed turn arrives in pieces and is stored once complete', async (t) => {
  const h = await startHarness(t);
  const chat = h.client({ sessionId: 'stream-1' });
  const stream = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    stream: true,
    messages: [{ role: 'user', content: 'my name is Ada' }],
  });
  let content = '';
  let chunks = 0;
  for await (const chunk of stream) {
    content += chunk.choices[0]?.delta.content ?? '';
    chunks++;
  }
  assert.ok(chunks > 3, `expected several chunks, got ${chunks}`);
  assert.match(content, /Turn 1/);
  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/stream-1`)).json()) as {
    messages: Array<{ role: string; content: string }>;
  };
  assert.deepEqual(stored.messages, [
    { role: 'user', content: 'my name is Ada' },
    { role: 'assistant', content },
  ]);
  const again = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    stream: true,
    messages: [{ role: 'user', content: 'what is my name?' }],
  });
  let answer = '';
  for await (const chunk of again) answer += chunk.choices[0]?.delta.content ?? '';
  assert.equal(answer, 'Your name is Ada.');
});

test('the turn is committed before [DONE] reaches the client', async (t) => {
  const h = await startHarness(t);
  const res = await request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'done-order' },
    body: JSON.stringify({ model: 'cs-llm-sim', stream: true, messages: [{ role: 'user', content: 'count to 30' }] }),
  });
  assert.equal(res.statusCode, 200);
  let received = '';
  let countAtDone = -1;
  for await (const chunk of res.body) {
    received += chunk.toString();
    if (countAtDone < 0 && received.includes('data: [DONE]')) countAtDone = storedCount(h, 'done-order');
    else if (countAtDone < 0) assert.equal(storedCount(h, 'done-order'), 0, 'nothing is stored while the reply streams');
  }
  assert.equal(countAtDone, 2);
  assert.ok(received.trimEnd().endsWith('data: [DONE]'));
});

test('a client that disconnects mid-stream aborts the upstream request and nothing is stored', async (t) => {
  const h = await startHarness(t, { sim: { tokensPerSecond: 50 } });
  const finished = nextRecord(h, (r) => r.route === '/v1/chat/completions');
  const controller = new AbortController();
  const res = await request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'abort-me' },
    body: JSON.stringify({ model: 'cs-llm-sim', stream: true, messages: [{ role: 'user', content: 'count to 500' }] }),
    signal: controller.signal,
  });
  const reader = res.body[Symbol.asyncIterator]();
  await reader.next();
  controller.abort();
  await reader.next().catch(() => undefined);
  const record = await finished;
  assert.equal(record.outcome, 'client_closed');
  while (h.sim.stats().aborted === 0) await new Promise((r) => setTimeout(r, 10));
  assert.equal(h.sim.stats().aborted, 1);
  assert.equal(storedCount(h, 'abort-me'), 0);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/abort-me`)).status, 404);
});

test('an upstream that dies mid-stream gives the client an error event and stores nothing', async (t) => {
  const h = await startHarness(t, { sim: { dieMidStreamRate: 1 } });
  const chat = h.client({ sessionId: 'dies' });
  const stream = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    stream: true,
    messages: [{ role: 'user', content: 'count to 200' }],
  });
  await assert.rejects(
    (async () => {
      for await (const _chunk of stream) {
        // drain until the error event
      }
    })(),
    (err: Error) => /upstream engine/.test(err.message),
  );
  assert.equal(storedCount(h, 'dies'), 0);
});

test('an upstream that dies mid-stream on a stateless request also ends in an error event', async (t) => {
  const h = await startHarness(t, { sim: { dieMidStreamRate: 1 } });
  const res = await request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'cs-llm-sim', stream: true, messages: [{ role: 'user', content: 'count to 200' }] }),
  });
  const text = await res.body.text();
  assert.match(text, /data: \{"error":\{"message":"the upstream engine/);
  assert.doesNotMatch(text, /\[DONE\]/);
});

test('streamed tool calls are stored with their arguments and the tool result turn completes the loop', async (t) => {
  const h = await startHarness(t);
  const chat = h.client({ sessionId: 'tools' });
  const tools = [
    {
      type: 'function' as const,
      function: {
        name: 'track_order',
        description: 'Order status',
        parameters: { type: 'object', properties: { order_id: { type: 'string' } } },
      },
    },
  ];
  const stream = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    stream: true,
    tools,
    messages: [{ role: 'user', content: 'Where is order 12345?' }],
  });
  const calls = new Map<number, { id: string; name: string; args: string }>();
  for await (const chunk of stream) {
    for (const call of chunk.choices[0]?.delta.tool_calls ?? []) {
      const c = calls.get(call.index) ?? { id: '', name: '', args: '' };
      c.id ||= call.id ?? '';
      c.name += call.function?.name ?? '';
      c.args += call.function?.arguments ?? '';
      calls.set(call.index, c);
    }
  }
  const call = calls.get(0)!;
  assert.equal(call.name, 'track_order');
  assert.deepEqual(JSON.parse(call.args), { order_id: '12345' });

  const stored = (await (await fetch(`${h.daemon.url}/v1/sessions/tools`)).json()) as {
    messages: Array<{ role: string; tool_calls?: unknown }>;
  };
  assert.deepEqual(stored.messages[1]!.tool_calls, [
    { id: call.id, type: 'function', function: { name: 'track_order', arguments: call.args } },
  ]);

  // The next turn sends only the tool result; the engine sees the call in the history and names the tool.
  const reply = await chat.chat.completions.create({
    model: 'cs-llm-sim',
    tools,
    messages: [{ role: 'tool', tool_call_id: call.id, content: '{"status":"shipped"}' }],
  });
  assert.equal(reply.choices[0]!.message.content, 'According to track_order, status is shipped.');
});

test('a client that gives up on a non-streaming turn aborts the upstream request and nothing is stored', async (t) => {
  const h = await startHarness(t, { sim: { ttftMs: 5000 } });
  const finished = nextRecord(h, (r) => r.route === '/v1/chat/completions');
  const controller = new AbortController();
  const pending = request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'gave-up' },
    body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hello?' }] }),
    signal: controller.signal,
  });
  while (h.sim.stats().running === 0) await new Promise((r) => setTimeout(r, 10));
  controller.abort();
  await assert.rejects(pending);
  assert.equal((await finished).outcome, 'client_closed');
  while (h.sim.stats().aborted === 0) await new Promise((r) => setTimeout(r, 10));
  assert.equal(storedCount(h, 'gave-up'), 0);
  assert.equal(h.daemon.inFlight(), 0);
});

test('a non-streaming turn is committed before the reply starts', async (t) => {
  const h = await startHarness(t);
  const res = await request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'json-order' },
    body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hello' }] }),
  });
  // Only the status line and headers have been read here; the body is still unread.
  assert.equal(res.statusCode, 200);
  assert.equal(storedCount(h, 'json-order'), 2);
  await res.body.json();
});

test('a session stream counts tokens from the usage the daemon asks for, and hides that usage from a client that did not ask', async (t) => {
  // An engine that merges several tokens into one delta (as the CPU engine does within 10 ms): counting deltas
  // would say 2 where the engine generated 7.
  const bodies: Array<Record<string, unknown>> = [];
  const engine = createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      if (req.method !== 'POST') {
        // The daemon's own probes (models, health).
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'merged', object: 'model' }] }));
        return;
      }
      const body = JSON.parse(raw) as Record<string, unknown>;
      bodies.push(body);
      const head = { id: 'chatcmpl-merged', object: 'chat.completion.chunk', created: 1, model: 'merged' };
      const event = (o: object) => `data: ${JSON.stringify({ ...head, ...o })}\n\n`;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(event({ choices: [{ index: 0, delta: { role: 'assistant', content: 'Hello there' }, finish_reason: null }] }));
      res.write(event({ choices: [{ index: 0, delta: { content: ' friend.' }, finish_reason: 'stop' }] }));
      const options = body.stream_options as { include_usage?: boolean } | undefined;
      if (options?.include_usage) res.write(event({ choices: [], usage: { prompt_tokens: 12, completion_tokens: 7, total_tokens: 19 } }));
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => engine.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => engine.close(() => resolve())));
  const h = await startHarness(t, { config: { daemon: { upstream: `http://127.0.0.1:${(engine.address() as AddressInfo).port}` } } });

  for (const clientAsks of [false, true]) {
    const sessionId = `usage-${clientAsks}`;
    const recorded = nextRecord(h, (r) => r.sessionId === sessionId);
    const stream = await h.client({ sessionId }).chat.completions.create({
      model: 'merged',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
      ...(clientAsks ? { stream_options: { include_usage: true } } : {}),
    });
    let text = '';
    const usages: unknown[] = [];
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      if (chunk.usage) usages.push(chunk.usage);
    }
    assert.equal(text, 'Hello there friend.');
    assert.deepEqual(
      (bodies.at(-1)!.stream_options as { include_usage?: boolean }).include_usage,
      true,
      'the engine is asked for usage either way',
    );
    assert.equal(
      usages.length,
      clientAsks ? 1 : 0,
      clientAsks ? 'the client asked for usage and gets it' : 'usage the client did not ask for is not relayed',
    );
    const record = await recorded;
    assert.equal(record.completionTokens, 7);
    assert.equal(record.promptTokens, 12);
    assert.equal(storedCount(h, sessionId), 2);
  }
});

/**
 * An engine that streams `events` content events of 8 KB each as fast as its client takes them, waiting for
 * 'drain' when its socket is full: `state.blockedSince` says since when it waits (0: it does not).
 */
async function bulkEngine(t: { after(fn: () => Promise<void>): void }, events: number) {
  const state = { blockedSince: 0, completed: 0, aborted: 0 };
  const engine = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method !== 'POST') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'bulk', object: 'model', max_model_len: 1_000_000 }] }));
        return;
      }
      const head = { id: 'chatcmpl-bulk', object: 'chat.completion.chunk', created: 1, model: 'bulk' };
      const event = (delta: object, finish: string | null = null) =>
        `data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta, finish_reason: finish }] })}\n\n`;
      // 8 KB per event, of which one character is content: the stored turn stays small.
      const content = event({ content: 'x' }).replace('"object"', `"padding":"${'p'.repeat(8192)}","object"`);
      let closed = false;
      res.on('close', () => {
        closed = true;
        if (!res.writableFinished) state.aborted++;
      });
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(event({ role: 'assistant', content: '' }));
      void (async () => {
        for (let i = 0; i < events && !closed; i++) {
          if (!res.write(content)) {
            state.blockedSince = Date.now();
            await once(res, 'drain').catch(() => {});
            state.blockedSince = 0;
          }
        }
        if (closed) return;
        res.write(event({}, 'stop'));
        res.end('data: [DONE]\n\n');
        state.completed++;
      })();
    });
  });
  await new Promise<void>((resolve) => engine.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => engine.close(() => resolve())));
  return { url: `http://127.0.0.1:${(engine.address() as AddressInfo).port}`, state };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A streamed session turn read over a raw socket, so the test decides when the client reads: the socket is
 * paused at its first bytes. `paused()` runs while it is paused; the socket reads again once it returned
 * (never, when it returns false).
 */
function slowReader(h: Harness, sessionId: string, paused: () => Promise<boolean>): Promise<string> {
  const body = JSON.stringify({ model: 'bulk', stream: true, messages: [{ role: 'user', content: 'tell me a long story' }] });
  const { hostname, port } = new URL(h.daemon.url);
  const socket = connect(Number(port), hostname);
  socket.write(
    `POST /v1/chat/completions HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Session-Id: ${sessionId}\r\nConnection: close\r\n\r\n${body}`,
  );
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    socket.once('data', () => {
      socket.pause();
      void paused().then((resume) => {
        if (resume) socket.resume();
      });
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

async function metricsText(h: Harness): Promise<string> {
  return (await fetch(`${h.daemon.url}/metrics`)).text();
}

test('a client that stops reading for longer than the stream idle timeout is not blamed on the upstream: the turn completes', async (t) => {
  // 16 MB of events: more than the sockets between the engine and the client hold.
  const engine = await bulkEngine(t, 2000);
  const h = await startHarness(t, { config: { daemon: { upstream: engine.url, streamIdleTimeoutMs: 300 } } });
  const recorded = nextRecord(h, (r) => r.sessionId === 'slow-reader');
  let heldBack = false;
  const raw = await slowReader(h, 'slow-reader', async () => {
    // Unread until the engine has waited for five idle timeouts in a row: the relay holds it back for the
    // client all that time (two writes in a row can block it for a moment, never that long).
    while (!(engine.state.blockedSince > 0 && Date.now() - engine.state.blockedSince > 1500) && engine.state.completed === 0)
      await sleep(10);
    heldBack = engine.state.completed === 0;
    return true;
  });
  assert.ok(heldBack, 'the reply outgrew the sockets on the way, so the relay held the engine back while the client did not read');
  // The end of the stream: [DONE] after the last content event, no error event (the reply is too long to print).
  assert.ok(!raw.includes('"error"') && raw.includes('data: [DONE]'), raw.slice(-300));
  const record = await recorded;
  assert.equal(record.outcome, 'ok');
  assert.equal(engine.state.completed, 1);
  assert.equal(storedCount(h, 'slow-reader'), 2);
  const metrics = await metricsText(h);
  assert.doesNotMatch(metrics, /cs_llm_upstream_attempt_failures_total\{/);
  assert.doesNotMatch(metrics, /cs_llm_upstream_failures_total\{/);
});

test('a client that stays unreadable past daemon.clientStallTimeoutMs is cut without blaming the upstream, and nothing is stored', async (t) => {
  const engine = await bulkEngine(t, 2000);
  const h = await startHarness(t, {
    config: { daemon: { upstream: engine.url, streamIdleTimeoutMs: 5000, clientStallTimeoutMs: 300 } },
  });
  const recorded = nextRecord(h, (r) => r.sessionId === 'stalled');
  void slowReader(h, 'stalled', async () => false);
  const record = await recorded;
  assert.equal(record.outcome, 'client_stalled');
  while (engine.state.aborted === 0) await sleep(10);
  assert.equal(engine.state.completed, 0);
  assert.equal(storedCount(h, 'stalled'), 0);
  const metrics = await metricsText(h);
  assert.match(metrics, /cs_llm_requests_aborted_total\{reason="client_stalled"\} 1/);
  assert.doesNotMatch(metrics, /cs_llm_upstream_attempt_failures_total\{/);
  assert.doesNotMatch(metrics, /cs_llm_upstream_failures_total\{/);
  assert.equal(h.daemon.inFlight(), 0);
});

test('an upstream event over 1 MiB ends the stream with an error event, and nothing is stored', async (t) => {
  // One normal event, then a data line that does not end within 1 MiB (the daemon would have to hold it all).
  const engine = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method !== 'POST') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'huge', object: 'model' }] }));
        return;
      }
      const head = { id: 'chatcmpl-huge', object: 'chat.completion.chunk', created: 1, model: 'huge' };
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta: { role: 'assistant', content: 'Hi' } }] })}\n\n`);
      res.write(`data: {"choices": [{"index": 0, "delta": {"content": "${'z'.repeat(1536 * 1024)}`);
      res.end('"}}]}\n\ndata: [DONE]\n\n');
    });
  });
  await new Promise<void>((resolve) => engine.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => engine.close(() => resolve())));
  const h = await startHarness(t, { config: { daemon: { upstream: `http://127.0.0.1:${(engine.address() as AddressInfo).port}` } } });
  const res = await request(`${h.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'huge-line' },
    body: JSON.stringify({ model: 'huge', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
  });
  const text = await res.body.text();
  assert.equal(res.statusCode, 200);
  assert.ok(text.length < 1024 * 1024, `${text.length} bytes relayed: the long event was not`);
  assert.match(text, /"content":"Hi"/);
  assert.match(text, /data: \{"error":.*"code":"upstream_bad_reply"/);
  assert.doesNotMatch(text, /\[DONE\]/);
  assert.equal(storedCount(h, 'huge-line'), 0);
});

test(
  'a stream whose engine is slow to its first event, or to its end after [DONE], gets each part to the client as it comes',
  { timeout: 30_000 },
  async (t) => {
    // The headers normally leave with the first event (one write, #21); an engine that holds its first event
    // (a long prefill) must not hold the client's headers too. Likewise [DONE] normally leaves with the end of
    // the body (pass-through.ts); an engine that holds its end must not hold [DONE].
    let sendFirst: () => void = () => {};
    let sendEnd: () => void = () => {};
    const engine = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (req.method !== 'POST') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ object: 'list', data: [{ id: 'slow', object: 'model', max_model_len: 4096 }] }));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.flushHeaders();
        const chunk = { id: 'chatcmpl-slow', object: 'chat.completion.chunk', created: 1, model: 'slow' };
        sendFirst = () => {
          res.write(`data: ${JSON.stringify({ ...chunk, choices: [{ index: 0, delta: { content: 'hi' }, finish_reason: 'stop' }] })}\n\n`);
          res.write('data: [DONE]\n\n');
          sendEnd = () => res.end();
        };
      });
    });
    await new Promise<void>((resolve) => engine.listen(0, '127.0.0.1', resolve));
    t.after(() => new Promise<void>((resolve) => engine.close(() => resolve())));
    const h = await startHarness(t, { config: { daemon: { upstream: `http://127.0.0.1:${(engine.address() as AddressInfo).port}` } } });
    const res = await request(`${h.daemon.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'slow', stream: true, messages: [{ role: 'user', content: 'hello' }] }),
    });
    // The engine has not sent its first event yet: it sends it only now.
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'text/event-stream');
    sendFirst();
    let text = '';
    for await (const chunk of res.body) {
      text += (chunk as Buffer).toString();
      // The engine ends its body only once the client has [DONE] (a daemon that held it would wait forever).
      if (text.endsWith('data: [DONE]\n\n')) sendEnd();
    }
    assert.ok(text.includes('"content":"hi"') && text.endsWith('data: [DONE]\n\n'), text);
  },
);
