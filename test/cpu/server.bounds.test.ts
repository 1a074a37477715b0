import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import OpenAI from 'openai';
import { startCpuEngine, type RunningCpuEngine } from '../../src/cpu/server.js';
import { rawRequest } from '../helpers/http.js';
import { requireCpuRuntime, TINY_MEMORY } from '../helpers/cpu-runtime.js';

// The CPU engine's bounds before tokenizing (#22.7): tokenizing runs on the event loop, so a prompt that
// cannot fit must be refused before it is tokenized, the queue limit must apply before a body is read, and
// the body is capped near what the context can hold. tiny-memory: 512 tokens of context; its longest token
// is <|im_start|> (12 bytes), so no prompt over 512 x 13 bytes of text can fit.

async function engineFor(t: { after(fn: () => Promise<void>): void }, options: Partial<Parameters<typeof startCpuEngine>[0]> = {}) {
  const engine = await startCpuEngine({ modelPath: TINY_MEMORY, port: 0, threads: 1, ctxSize: 512, log: () => {}, ...options });
  t.after(() => engine.close());
  return engine;
}

const chatBody = (content: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ model: 'tiny-memory', messages: [{ role: 'user', content }], temperature: 0, ...extra });

/**
 * A request whose headers go out at once and whose body is held back (or never sent): the answer comes
 * only if the engine answers without reading the body. `end()` sends the rest; `abort()` drops the socket.
 */
function heldRequest(engine: RunningCpuEngine, headers: Record<string, string | number>) {
  const url = new URL(engine.url);
  let req!: ClientRequest;
  const response = new Promise<{ status: number; text: string }>((resolve, reject) => {
    req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/v1/chat/completions', headers }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.once('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
    });
    req.once('error', reject);
  });
  req.flushHeaders();
  return { response, req, abort: () => req.destroy() };
}

/** The answer, or a failure naming what it waited for: the engine must answer without waiting for a body. */
async function answeredWithoutBody(response: Promise<{ status: number; text: string }>, what: string) {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer to ${what} while its body was held back`)), 20_000);
  });
  try {
    return await Promise.race([response, late]);
  } finally {
    clearTimeout(timer);
  }
}

test(
  'a body longer than the context could hold is refused from its Content-Length with 400, without being read',
  { timeout: 120_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const engine = await engineFor(t);
    const held = heldRequest(engine, { 'content-type': 'application/json', 'content-length': 15_600_000 });
    t.after(() => held.abort());
    const answer = await answeredWithoutBody(held.response, 'a 15.6 MB request');
    assert.equal(answer.status, 400);
    const error = (JSON.parse(answer.text) as { error: { message: string; type: string; param: string; code: number } }).error;
    assert.equal(error.code, 400);
    assert.equal(error.type, 'BadRequestError');
    assert.equal(error.param, 'messages');
    assert.match(error.message, /maximum context length is 512 tokens/);
    assert.match(error.message, /15600000 bytes/);
  },
);

test('a body sent without a length is cut off at the same bound: 400', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const engine = await engineFor(t);
  const url = new URL(engine.url);
  const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.once('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }));
      },
    );
    req.once('error', reject);
    // Chunked: 1 MB of prompt in 64 KiB pieces, with no Content-Length to refuse it by.
    const body = chatBody('x'.repeat(1_000_000));
    for (let at = 0; at < body.length; at += 65_536) req.write(body.slice(at, at + 65_536));
    req.end();
  });
  assert.equal(answer.status, 400);
  assert.match(
    (JSON.parse(answer.text) as { error: { message: string } }).error.message,
    /maximum context length is 512 tokens.*a request body over 105472 bytes/,
  );
});

test(
  'three 15.6 MB prompts at once each get a clear 400 through the openai client while /health keeps answering',
  { timeout: 180_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const engine = await engineFor(t);
    const client = new OpenAI({ baseURL: `${engine.url}/v1`, apiKey: 'unused', maxRetries: 0, timeout: 120_000 });
    const huge = 'x'.repeat(15_600_000);
    let polling = true;
    const health: number[] = [];
    const poller = (async () => {
      while (polling) {
        health.push((await rawRequest(engine.url, { path: '/health' })).status);
        await sleep(20);
      }
    })();
    const results = await Promise.allSettled(
      [1, 2, 3].map(() => client.chat.completions.create({ model: 'tiny-memory', messages: [{ role: 'user', content: huge }] })),
    );
    polling = false;
    await poller;
    for (const result of results) {
      assert.equal(result.status, 'rejected');
      const err = (result as PromiseRejectedResult).reason as unknown;
      assert.ok(err instanceof OpenAI.BadRequestError, String(err));
      assert.equal(err.status, 400);
      assert.equal(err.param, 'messages');
      // Refused by the body's size, not by a count of its tokens: nothing was tokenized.
      assert.match(err.message, /maximum context length is 512 tokens\. However, you sent a request body of \d+ bytes/);
    }
    assert.ok(health.length > 0);
    assert.deepEqual(new Set(health), new Set([200]));
    // The engine still serves.
    const reply = await client.chat.completions.create({
      model: 'tiny-memory',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 2,
    });
    assert.equal(reply.choices.length, 1);
  },
);

test(
  'messages with more text than the context can hold are a 400 before tokenizing; a long prompt that fits is served',
  { timeout: 120_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const engine = await engineFor(t);
    const post = (body: string) =>
      rawRequest(engine.url, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });

    // 8,000 bytes of text: at least 616 tokens whatever they are, so no tokenizing is needed to refuse it.
    const hopeless = await post(chatBody('é'.repeat(4000)));
    assert.equal(hopeless.status, 400);
    const error = (JSON.parse(hopeless.text) as { error: { message: string; param: string } }).error;
    assert.equal(error.param, 'messages');
    assert.match(error.message, /maximum context length is 512 tokens/);
    assert.match(error.message, /8000 bytes of text/);
    assert.match(error.message, /at least 616 tokens/);

    // Within the byte bound but over the context once tokenized (one token per character): vLLM's own message.
    const over = await post(chatBody('y'.repeat(700)));
    assert.equal(over.status, 400);
    assert.match((JSON.parse(over.text) as { error: { message: string } }).error.message, /you requested \d+ tokens/);

    // 400 characters and 2 more tokens fit in 512: served.
    const fits = await post(chatBody('z'.repeat(400), { max_tokens: 2 }));
    assert.equal(fits.status, 200, fits.text);
    assert.ok((JSON.parse(fits.text) as { usage: { prompt_tokens: number } }).usage.prompt_tokens > 400);
  },
);

test(
  'the queue limit comes before the body: with every place taken, a request gets 429 at once, even one still sending its body',
  { timeout: 120_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    // One sequence and no queue: one request at a time, from the moment it is accepted.
    const engine = await engineFor(t, { parallel: 1, maxQueue: 0 });
    const body = chatBody('My name is Ada.', { max_tokens: 4 });
    const post = () =>
      rawRequest(engine.url, { method: 'POST', path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body });

    // A holds the only place while its body is still on the way.
    const a = heldRequest(engine, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    t.after(() => a.abort());
    await new Promise((resolve) => setTimeout(resolve, 200));
    const b = await post();
    assert.equal(b.status, 429, b.text);
    assert.match((JSON.parse(b.text) as { error: { message: string } }).error.message, /queue limit 0/);
    // C is refused without its body being read.
    const c = heldRequest(engine, { 'content-type': 'application/json', 'content-length': 15_600_000 });
    t.after(() => c.abort());
    assert.equal((await answeredWithoutBody(c.response, 'a request beyond the queue')).status, 429);
    assert.ok(engine.stats().rejected >= 2);

    // A finishes its body and is served; then the place is free again.
    a.req.end(body);
    assert.equal((await a.response).status, 200);
    assert.equal((await post()).status, 200);

    // A client that goes away mid-body gives its place back.
    const d = heldRequest(engine, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    await new Promise((resolve) => setTimeout(resolve, 200));
    d.abort();
    await d.response.catch(() => undefined);
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      status = (await post()).status;
      if (status !== 200) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal(status, 200);
  },
);
