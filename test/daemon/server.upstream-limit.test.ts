// An upstream's reply is read into memory where the daemon stores or rebuilds it (a session turn, whole or
// streamed): daemon.upstreamReplyLimitBytes bounds it. A stub engine on 127.0.0.1 answers "big" with more than
// the limit and anything else with a short reply; the real openai client and plain HTTP drive the daemon.

import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import OpenAI from 'openai';
import { loadConfig } from '../../src/core/config.js';
import { startDaemon } from '../../src/daemon/server.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LIMIT = 64 * 1024;
const PIECE = 'x'.repeat(1000);

function completion(content: string) {
  return {
    id: 'c',
    object: 'chat.completion',
    created: 0,
    model: 'stub',
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
  };
}

function chunkEvent(content: string): string {
  const chunk = {
    id: 'c',
    object: 'chat.completion.chunk',
    created: 0,
    model: 'stub',
    choices: [{ index: 0, delta: { content }, finish_reason: null }],
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

async function stubEngine(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.url === '/v1/models') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'stub', object: 'model', max_model_len: 4096 }] }));
        return;
      }
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { stream?: boolean; messages: Array<{ content: string }> };
      const big = body.messages.at(-1)!.content === 'big';
      const pieces = big ? (2 * LIMIT) / PIECE.length : 1;
      if (body.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (let i = 0; i < pieces; i++) res.write(chunkEvent(PIECE));
        res.end('data: [DONE]\n\n');
      } else {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(completion(big ? PIECE.repeat(pieces) : 'short')));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('a session turn whose reply is over daemon.upstreamReplyLimitBytes fails with 502, whole or streamed, and stores nothing', async (t) => {
  const upstream = await stubEngine(t);
  const { config, paths } = loadConfig({
    env: { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-daemon-')) },
    flags: { daemon: { upstream, upstreamReplyLimitBytes: LIMIT } },
  });
  const daemon = await startDaemon({ config, paths, port: 0 });
  t.after(() => daemon.close('test over'));
  const client = (sessionId: string) =>
    new OpenAI({ baseURL: `${daemon.url}/v1`, apiKey: 'unused', maxRetries: 0, defaultHeaders: { 'x-session-id': sessionId } });

  await assert.rejects(
    client('whole').chat.completions.create({ model: 'stub', messages: [{ role: 'user', content: 'big' }] }),
    (err: unknown) =>
      err instanceof OpenAI.APIError &&
      err.status === 502 &&
      err.code === 'upstream_reply_too_large' &&
      /larger than 65536 bytes \(daemon\.upstreamReplyLimitBytes\)/.test(err.message),
  );
  assert.equal((await fetch(`${daemon.url}/v1/sessions/whole`)).status, 404, 'nothing stored');

  const res = await fetch(`${daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'streamed' },
    body: JSON.stringify({ model: 'stub', stream: true, messages: [{ role: 'user', content: 'big' }] }),
  });
  const text = await res.text();
  assert.ok(!text.includes('data: [DONE]'), 'the stream was cut, not finished');
  assert.match(text, /"code":"upstream_reply_too_large"/);
  assert.ok(text.length < 2 * LIMIT, `the client got at most about the limit, not the whole reply: ${text.length} bytes`);
  assert.equal((await fetch(`${daemon.url}/v1/sessions/streamed`)).status, 404, 'nothing stored');

  // The daemon goes on serving, and a plain relay (no session: nothing held) is not cut.
  const next = await client('whole').chat.completions.create({ model: 'stub', messages: [{ role: 'user', content: 'hello' }] });
  assert.equal(next.choices[0]!.message.content, 'short');
  const stateless = await fetch(`${daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'stub', stream: true, messages: [{ role: 'user', content: 'big' }] }),
  });
  const relayed = await stateless.text();
  assert.ok(relayed.endsWith('data: [DONE]\n\n') && relayed.length > 2 * LIMIT, `relayed whole: ${relayed.length} bytes`);
});
