/*
 * How the CPU engine writes one chat completion in vLLM's wire format: a JSON body, or SSE chunks as the
 * model generates (role chunk, content chunks, finish chunk, usage chunk when asked, [DONE]). Streaming
 * coalesces: the first piece goes out at once (time to first token); later pieces that arrive within
 * intervalMs share one chunk. At real-model speeds (tens of tokens/s) every token still gets its own
 * chunk; at thousands of tokens/s this saves the client and the daemon most per-chunk work.
 */

import type { ServerResponse } from 'node:http';
import { once } from 'node:events';
import { errorBody } from '../openai-server/errors.js';
import { sendJson } from '../openai-server/respond.js';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface ReplyWriter {
  /** Streaming: the head and the role chunk; from then on a failure can only go out as an SSE error event. */
  start(): void;
  /** LlamaChat's onTextChunk when streaming, else undefined. */
  readonly onText: ((piece: string) => void) | undefined;
  /** Sends what the coalescing holds back. */
  flush(): void;
  /** The end of a reply: the finish (and usage) chunks and [DONE], or the whole JSON body. */
  finish(response: string, finishReason: 'stop' | 'length', usage: Usage): Promise<void>;
  /** The engine stopped the request: a 503 the client can read (an SSE error event once streaming). */
  stopped(message: string): void;
}

export function createReplyWriter(
  res: ServerResponse,
  envelope: { id: string; created: number; model: string },
  options: { stream: boolean; includeUsage: boolean; intervalMs: number; signal: AbortSignal },
): ReplyWriter {
  const { signal, intervalMs } = options;
  const head = { id: envelope.id, object: 'chat.completion.chunk', created: envelope.created, model: envelope.model };
  const chunk = (delta: object, finish: string | null) =>
    `data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
  let pendingWrite: Promise<unknown> | undefined;
  let unsent = '';
  let sentAny = false;
  let flushTimer: NodeJS.Timeout | undefined;
  const send = (piece: string) => {
    // Settles on abort as well, so an abort while the socket is full leaves no unhandled rejection.
    if (!res.write(chunk({ content: piece }, null)))
      pendingWrite ??= once(res, 'drain', { signal })
        .then(
          () => undefined,
          () => undefined,
        )
        .finally(() => (pendingWrite = undefined));
  };
  const flush = () => {
    if (flushTimer) clearTimeout(flushTimer);
    flushTimer = undefined;
    if (unsent === '' || signal.aborted) return;
    const piece = unsent;
    unsent = '';
    send(piece);
  };
  return {
    start() {
      if (!options.stream) return;
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(chunk({ role: 'assistant', content: '' }, null));
    },
    onText: options.stream
      ? (piece) => {
          if (piece === '' || signal.aborted) return;
          if (!sentAny || intervalMs === 0) {
            sentAny = true;
            send(piece);
            return;
          }
          unsent += piece;
          flushTimer ??= setTimeout(flush, intervalMs);
        }
      : undefined,
    flush,
    async finish(response, finishReason, usage) {
      if (!options.stream) {
        sendJson(res, 200, {
          id: envelope.id,
          object: 'chat.completion',
          created: envelope.created,
          model: envelope.model,
          choices: [{ index: 0, message: { role: 'assistant', content: response }, logprobs: null, finish_reason: finishReason }],
          usage,
        });
        return;
      }
      if (pendingWrite) await pendingWrite;
      if (signal.aborted) throw signal.reason;
      res.write(chunk({}, finishReason));
      if (options.includeUsage) res.write(`data: ${JSON.stringify({ ...head, choices: [], usage })}\n\n`);
      res.end('data: [DONE]\n\n');
    },
    stopped(message) {
      if (res.writableEnded || res.destroyed) return;
      if (res.headersSent) res.end(`data: ${JSON.stringify(errorBody(503, message))}\n\n`);
      else sendJson(res, 503, errorBody(503, message), { 'retry-after': '1', connection: 'close' });
    },
  };
}
