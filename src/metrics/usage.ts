/*
 * Token counts for the metrics, read from the bytes the daemon relays anyway, without parsing whole JSON
 * bodies on the hot path: a non-streaming reply carries `"usage": {...}` near its end; a stream carries it
 * in its last chunk only when the client asked (stream_options.include_usage), otherwise its content and
 * tool-call deltas are counted (vLLM and the simulator send one token per delta).
 */

import { performance } from 'node:perf_hooks';

export interface TokenFields {
  promptTokens?: number;
  /** Of promptTokens, served from the engine's prefix cache (usage.prompt_tokens_details.cached_tokens). */
  cachedTokens?: number;
  completionTokens?: number;
  ttftMs?: number;
}

const USAGE = '"usage"';
const PROMPT = /"prompt_tokens"\s*:\s*(\d+)/;
const COMPLETION = /"completion_tokens"\s*:\s*(\d+)/;
const CACHED = /"cached_tokens"\s*:\s*(\d+)/;

interface Usage {
  prompt: number;
  cached: number;
  completion: number;
}

/** The usage object's counts from the text at and after `"usage"`, when it holds any. */
function usageIn(text: string): Usage | null {
  const prompt = PROMPT.exec(text);
  const completion = COMPLETION.exec(text);
  if (!prompt && !completion) return null;
  const cached = CACHED.exec(text);
  return {
    prompt: prompt ? Number(prompt[1]) : 0,
    cached: cached ? Number(cached[1]) : 0,
    completion: completion ? Number(completion[1]) : 0,
  };
}

function setUsage(into: TokenFields, usage: Usage): void {
  into.promptTokens = usage.prompt;
  into.completionTokens = usage.completion;
  if (usage.cached > 0) into.cachedTokens = usage.cached;
}

/** Sets promptTokens/completionTokens from a chat.completion body's usage; leaves them unset without one. */
export function readUsage(body: Buffer, into: TokenFields): void {
  const at = body.lastIndexOf(USAGE);
  if (at < 0) return;
  // The usage object is small and flat; 400 bytes hold it with room to spare.
  const usage = usageIn(body.toString('utf8', at, Math.min(body.length, at + 400)));
  if (usage) setUsage(into, usage);
}

const DELTA = '"delta":{"';
const CONTENT_DELTA = 'content":"';
const TOOL_DELTA = 'tool_calls":';

/**
 * Deltas of content or tool calls in `text`: one search for what both start with, then a look at what
 * follows (a role delta, `"content":null`, is not a token).
 */
function deltasIn(text: string): number {
  let n = 0;
  let at = text.indexOf(DELTA);
  while (at >= 0) {
    at += DELTA.length;
    if (text.startsWith(CONTENT_DELTA, at) || text.startsWith(TOOL_DELTA, at)) n++;
    at = text.indexOf(DELTA, at);
  }
  return n;
}

/**
 * Watches a relayed SSE stream: the time of its first byte (time to first token, as the client sees it)
 * and its token counts. One per streamed request; push() every chunk, finish() once.
 */
export class StreamMeter {
  private firstAt = -1;
  private deltas = 0;
  private usage: Usage | null = null;

  /** @param startedAt performance.now() when the request arrived. */
  constructor(private readonly startedAt: number) {}

  push(chunk: Buffer): void {
    if (this.firstAt < 0) this.firstAt = performance.now();
    // The chunk read once, as latin1 (a byte per character, so an ASCII needle is found where its bytes are),
    // and searched in JavaScript: each Buffer#indexOf is a call into C++, and three of them per chunk were
    // 4.7% of the daemon's CPU under 50 concurrent streams (#21), twice this.
    const text = chunk.toString('latin1');
    this.deltas += deltasIn(text);
    const at = text.lastIndexOf(USAGE);
    if (at >= 0) {
      // The counts are ASCII digits: latin1 reads them as utf8 would.
      const found = usageIn(text.slice(at, at + 400));
      if (found) this.usage = found;
    }
  }

  finish(into: TokenFields): void {
    if (this.firstAt >= 0) into.ttftMs = this.firstAt - this.startedAt;
    if (this.usage) setUsage(into, this.usage);
    else if (this.deltas > 0) {
      into.completionTokens = this.deltas;
    }
  }
}
