/*
 * One chat turn of a capacity test over HTTP (undici): the request a customer's client would send, timed from
 * when it was due. Streams are read as they come: the first content token is the time to first token, and the
 * usage event (asked for with stream_options.include_usage) gives the tokens.
 */

import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from 'undici';
import type { TurnOutcome } from './ramp.js';

export interface TurnRequest {
  dispatcher: Dispatcher;
  /** The endpoint's base URL, without /v1. */
  url: string;
  apiKey: string | undefined;
  model: string;
  sessionId: string;
  content: string;
  maxTokens: number;
  stream: boolean;
  /** vLLM's ignore_eos (also the simulator's and the CPU engine's): the reply is exactly maxTokens long. */
  ignoreEos: boolean;
  timeoutMs: number;
  signal: AbortSignal;
  /** performance.now() when the turn was due. */
  dueAt: number;
}

const CONTENT = /"content":"[^"]/;
const COMPLETION = /"completion_tokens"\s*:\s*(\d+)/;

export async function sendTurn(t: TurnRequest): Promise<TurnOutcome> {
  const body = JSON.stringify({
    model: t.model,
    messages: [{ role: 'user', content: t.content }],
    max_tokens: t.maxTokens,
    ...(t.ignoreEos ? { ignore_eos: true } : {}),
    ...(t.stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });
  let ttftMs: number | null = null;
  // Its own controller (not AbortSignal.any): thousands of turns must not leave listeners on the run's signal.
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, t.timeoutMs);
  const onStop = () => controller.abort();
  t.signal.addEventListener('abort', onStop, { once: true });
  const signal = controller.signal;
  try {
    const res = await request(`${t.url}/v1/chat/completions`, {
      method: 'POST',
      dispatcher: t.dispatcher,
      signal,
      headers: {
        'content-type': 'application/json',
        'x-session-id': t.sessionId,
        ...(t.apiKey ? { authorization: `Bearer ${t.apiKey}` } : {}),
      },
      body,
    });
    let tail = '';
    for await (const chunk of res.body) {
      const text = (chunk as Buffer).toString('utf8');
      if (t.stream && ttftMs === null && res.statusCode === 200 && CONTENT.test(text)) ttftMs = performance.now() - t.dueAt;
      // The usage sits near the end of a reply: the last few hundred characters hold it.
      tail = (tail + text).slice(-600);
    }
    const e2eMs = performance.now() - t.dueAt;
    if (res.statusCode === 429) return { result: 'rate_limited', e2eMs, ttftMs: null, completionTokens: 0, problem: 'HTTP 429' };
    if (res.statusCode !== 200) return { result: 'error', e2eMs, ttftMs: null, completionTokens: 0, problem: `HTTP ${res.statusCode}` };
    if (t.stream && !tail.includes('[DONE]')) {
      return { result: 'error', e2eMs, ttftMs, completionTokens: 0, problem: 'stream ended without [DONE]' };
    }
    const tokens = COMPLETION.exec(tail);
    return { result: 'ok', e2eMs, ttftMs, completionTokens: tokens ? Number(tokens[1]) : 0 };
  } catch (err) {
    const e2eMs = performance.now() - t.dueAt;
    const problem = timedOut ? `no reply within ${t.timeoutMs} ms` : ((err as { code?: string }).code ?? (err as Error).message);
    return { result: 'error', e2eMs, ttftMs: null, completionTokens: 0, problem };
  } finally {
    clearTimeout(timer);
    t.signal.removeEventListener('abort', onStop);
  }
}
