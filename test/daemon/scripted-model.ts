import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { request } from 'undici';
import { startSimulator } from '../../src/sim/server.js';

export interface ScriptedCall {
  name: string;
  /** The arguments string exactly as the model writes it. */
  arguments: string;
}

/**
 * A model that makes the tool calls it is given, whatever tools it was offered (as a confused or
 * prompt-injected model would), in front of a simulator: a chat completion whose conversation ends with a
 * user message is answered with `calls` (JSON or SSE, as asked); every other request (the round after the
 * tool results, /v1/models) goes to the simulator, which quotes the results. A real HTTP server on 127.0.0.1.
 */
export async function startScriptedModel(
  t: { after(fn: () => Promise<void> | void): void },
  calls: ScriptedCall[],
): Promise<{ url: string }> {
  const sim = await startSimulator({ port: 0 });
  t.after(() => sim.close());
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const body = req.method === 'POST' && raw.length > 0 ? (JSON.parse(raw.toString('utf8')) as Record<string, unknown>) : null;
      const messages = (body?.messages ?? []) as Array<{ role?: string }>;
      if (req.url === '/v1/chat/completions' && messages[messages.length - 1]?.role === 'user') {
        answerWithCalls(res, body!, calls);
        return;
      }
      void forward(sim.url, req, raw, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

function answerWithCalls(res: ServerResponse, body: Record<string, unknown>, calls: ScriptedCall[]): void {
  const toolCalls = calls.map((c, i) => ({
    id: `call_scripted_${i}`,
    type: 'function',
    function: { name: c.name, arguments: c.arguments },
  }));
  const base = { id: 'chatcmpl-scripted', created: 0, model: String(body.model ?? 'scripted') };
  if (body.stream === true) {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const delta = { role: 'assistant', content: null, tool_calls: toolCalls.map((c, index) => ({ index, ...c })) };
    res.write(
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, finish_reason: null }] })}\n\n`,
    );
    res.write(
      `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }] })}\n\n`,
    );
    res.end('data: [DONE]\n\n');
    return;
  }
  const message = { role: 'assistant', content: null, tool_calls: toolCalls };
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ ...base, object: 'chat.completion', choices: [{ index: 0, message, finish_reason: 'tool_calls' }] }));
}

async function forward(target: string, req: IncomingMessage, body: Buffer, res: ServerResponse): Promise<void> {
  try {
    const answer = await request(`${target}${req.url ?? '/'}`, {
      method: (req.method ?? 'GET') as 'GET',
      headers: { 'content-type': 'application/json' },
      body: req.method === 'POST' ? body : null,
    });
    res.writeHead(answer.statusCode, { 'content-type': String(answer.headers['content-type'] ?? 'application/json') });
    for await (const chunk of answer.body) res.write(chunk);
    res.end();
  } catch {
    res.destroy();
  }
}
