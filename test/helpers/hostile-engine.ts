import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Escape sequences an engine (or anything upstream) could send: a window title (OSC), a screen clear, a C1 CSI, a carriage return. */
export const HOSTILE = {
  title: '\u001b]0;pwned\u0007',
  clear: '\u001b[2J\u001b[H',
  c1: '\u009b31m',
  cr: 'ok\r',
};
export const HOSTILE_MODEL = `${HOSTILE.title}evil-model${HOSTILE.c1}`;
export const HOSTILE_REPLY = ['Hello', HOSTILE.clear, ' there', HOSTILE.title, HOSTILE.cr, ' friend'];

/** Every C0 control but newline and tab, DEL, and C1: what must never reach the operator's terminal. */
export const CONTROL = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/;

/**
 * A small OpenAI-compatible engine on 127.0.0.1 whose model id, streamed reply and error texts carry escape
 * sequences. A user message "fail" gets a 500 whose message carries them too.
 */
export async function startHostileEngine(t: { after(fn: () => Promise<void> | void): void }): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.url === '/health') return void res.end('ok');
      if (req.url === '/v1/models') {
        res.setHeader('content-type', 'application/json');
        return void res.end(JSON.stringify({ object: 'list', data: [{ id: HOSTILE_MODEL, object: 'model', max_model_len: 4096 }] }));
      }
      if (req.url === '/v1/chat/completions') {
        const request = JSON.parse(body) as { stream?: boolean; messages: Array<{ content: string }> };
        if (request.messages.at(-1)?.content === 'fail') {
          res.writeHead(500, { 'content-type': 'application/json' });
          return void res.end(
            JSON.stringify({ error: { message: `engine broke ${HOSTILE.clear}${HOSTILE.title}badly`, type: 'server_error' } }),
          );
        }
        const base = { id: 'c1', object: 'chat.completion.chunk', created: 0, model: HOSTILE_MODEL };
        if (!request.stream) {
          res.setHeader('content-type', 'application/json');
          return void res.end(
            JSON.stringify({
              ...base,
              object: 'chat.completion',
              choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: HOSTILE_REPLY.join('') } }],
            }),
          );
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        for (const piece of HOSTILE_REPLY)
          res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: { content: piece }, finish_reason: null }] })}\n\n`);
        res.write(`data: ${JSON.stringify({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`);
        return void res.end('data: [DONE]\n\n');
      }
      res.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}
