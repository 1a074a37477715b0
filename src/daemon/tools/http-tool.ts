import type { Dispatcher } from 'undici';
import type { ToolConfig } from '../../core/config.js';
import type { ToolRequest } from './tool-request.js';

/** Tool results are cut here: a result goes back into the model's context. */
export const MAX_RESULT_CHARS = 16_000;

export type ToolOutcome = 'ok' | 'invalid_arguments' | 'unknown_tool' | 'timeout' | 'failed' | 'http_error' | 'breaker_open' | 'aborted';

export interface ToolResult {
  outcome: ToolOutcome;
  /** The `tool` message's content: the endpoint's body, or {"error": "..."} the model can explain. */
  content: string;
}

export function errorResult(outcome: ToolOutcome, message: string): ToolResult {
  return { outcome, content: JSON.stringify({ error: message }) };
}

/** Closes a reply's connection without reading on; undici reports that as an abort error, expected here. */
function stopReading(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

/**
 * A reply's text up to MAX_RESULT_CHARS: reading stops at the cut and the rest is never fetched (the
 * connection is closed), so a huge or endless reply costs at most one chunk more than the cut.
 */
async function readCut(body: Dispatcher.ResponseData['body']): Promise<string> {
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of body as AsyncIterable<Buffer>) {
    text += decoder.decode(chunk, { stream: true });
    if (text.length > MAX_RESULT_CHARS) {
      stopReading(body);
      return `${text.slice(0, MAX_RESULT_CHARS)}...(cut)`;
    }
  }
  return text + decoder.decode();
}

function describeError(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string')
      return code === 'ECONNREFUSED' ? 'the tool endpoint refused the connection' : `the tool endpoint failed (${code})`;
    e = (e as { cause?: unknown }).cause;
  }
  return 'the tool endpoint failed';
}

/** The result of a call cut short because the turn's client went away (no model ever reads it). */
export const ABORTED: ToolResult = errorResult('aborted', 'the client went away');

/**
 * Runs one HTTP tool call within its timeout, or until `signal` (the turn's client went away) aborts it.
 * Never throws: every failure is an error result. 4xx answers are results the model can explain (an unknown
 * order); timeouts, connection errors and 5xx are failures (they count towards the tool's circuit breaker).
 */
export async function runHttpTool(tool: ToolConfig, req: ToolRequest, signal?: AbortSignal): Promise<ToolResult> {
  const timeoutMs = tool.http.timeoutMs;
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    // undici in full only once a tool is called: a daemon without tools never loads it (#21, its RSS).
    const { request } = await import('undici');
    const res = await request(req.url, {
      method: req.method as 'GET',
      headers: req.headers,
      body: req.body,
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    if (res.statusCode >= 500) {
      stopReading(res.body);
      return errorResult('failed', `the tool ${tool.name} failed with HTTP ${res.statusCode}`);
    }
    const text = await readCut(res.body);
    if (res.statusCode >= 400) return { outcome: 'http_error', content: JSON.stringify({ error: `HTTP ${res.statusCode}`, body: text }) };
    return { outcome: 'ok', content: text === '' ? '{}' : text };
  } catch (err) {
    if (signal?.aborted) return ABORTED;
    const code = (err as { code?: unknown; name?: unknown }).code;
    if (timeout.aborted || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
      return errorResult('timeout', `the tool ${tool.name} did not answer within ${timeoutMs} ms`);
    }
    return errorResult('failed', `${describeError(err)} (tool ${tool.name})`);
  }
}
