/*
 * Server-sent events, incrementally: the upstream's bytes arrive in arbitrary chunks, the daemon forwards
 * whole events (so it can hold back the final `data: [DONE]`) and reads each event's data. Pure.
 */

import type { ChatMessage } from '../core/messages.js';

export interface SseEvent {
  /** The event's bytes including its terminating blank line, to forward unchanged. */
  raw: Buffer;
  /** The joined `data:` lines, or null for an event without data (a comment or keep-alive). */
  data: string | null;
}

const LF = 10;
const CR = 13;

/** The longest event the splitter holds while waiting for its end (an engine's events are a few hundred bytes). */
export const MAX_EVENT_BYTES = 1024 * 1024;

/** An upstream event grew past MAX_EVENT_BYTES without ending: the stream is refused rather than buffered. */
export class SseEventTooLongError extends Error {
  constructor() {
    super(`the upstream sent an event longer than ${MAX_EVENT_BYTES} bytes`);
  }
}

export class SseSplitter {
  private pending: Buffer | null = null;

  /**
   * Complete events in this chunk (plus what was pending); an incomplete tail waits for the next chunk. Throws
   * SseEventTooLongError when that tail passes MAX_EVENT_BYTES.
   */
  push(chunk: Buffer): SseEvent[] {
    const held = this.pending?.length ?? 0;
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    const events: SseEvent[] = [];
    let start = 0;
    // The held bytes were scanned already; only a separator straddling the two (\n | \n, \n | \r\n) is new.
    for (let i = Math.max(0, held - 2); i < buf.length; i++) {
      if (buf[i] !== LF) continue;
      let end = -1;
      if (buf[i + 1] === LF) end = i + 2;
      else if (buf[i + 1] === CR && buf[i + 2] === LF) end = i + 3;
      if (end < 0) continue;
      const raw = buf.subarray(start, end);
      events.push({ raw, data: eventData(raw) });
      start = end;
      i = end - 1;
    }
    if (buf.length - start > MAX_EVENT_BYTES) {
      this.pending = null;
      throw new SseEventTooLongError();
    }
    this.pending = start < buf.length ? Buffer.from(buf.subarray(start)) : null;
    return events;
  }

  /** Bytes of an event that never completed. */
  get leftover(): number {
    return this.pending?.length ?? 0;
  }
}

export function eventData(raw: Buffer): string | null {
  // The usual event is one `data: ...` line (bytes d a t a :): read it straight from the bytes, without splitting lines.
  const firstLf = raw.indexOf(LF);
  if (firstLf >= 0 && raw[0] === 100 && raw[1] === 97 && raw[2] === 116 && raw[3] === 97 && raw[4] === 58) {
    const lineEnd = firstLf > 0 && raw[firstLf - 1] === CR ? firstLf - 1 : firstLf;
    const rest = firstLf + 1;
    const endsHere = raw[rest] === LF || (raw[rest] === CR && raw[rest + 1] === LF);
    if (endsHere) return raw.toString('utf8', raw[5] === 32 ? 6 : 5, lineEnd);
  }
  const text = raw.toString('utf8');
  let data: string | null = null;
  for (const line of text.split(/\r?\n/)) {
    if (!line.startsWith('data:')) continue;
    const value = line.charCodeAt(5) === 32 ? line.slice(6) : line.slice(5);
    data = data === null ? value : `${data}\n${value}`;
  }
  return data;
}

interface ToolCallDraft {
  id?: string;
  type?: string;
  function: { name: string; arguments: string };
}

/**
 * Builds the assistant message from chat.completion.chunk deltas: content concatenated, tool calls by
 * index with their argument fragments concatenated. Only choice 0 is kept (a session stores one reply).
 */
export class TurnAccumulator {
  private content: string | null = null;
  private readonly toolCalls = new Map<number, ToolCallDraft>();
  /** The upstream's in-stream error object, if it sent one. */
  error: unknown = null;
  finishReason: string | null = null;

  add(chunk: unknown): void {
    if (chunk === null || typeof chunk !== 'object') return;
    const c = chunk as { error?: unknown; choices?: unknown };
    if (c.error !== undefined) {
      this.error = c.error;
      return;
    }
    if (!Array.isArray(c.choices)) return;
    for (const choice of c.choices as Array<{ index?: number; delta?: Record<string, unknown>; finish_reason?: string | null }>) {
      if ((choice.index ?? 0) !== 0) continue;
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
      const delta = choice.delta;
      if (!delta) continue;
      if (typeof delta.content === 'string') this.content = (this.content ?? '') + delta.content;
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls as Array<Record<string, unknown>>) {
          const index = typeof call.index === 'number' ? call.index : this.toolCalls.size;
          const draft = this.toolCalls.get(index) ?? { function: { name: '', arguments: '' } };
          if (typeof call.id === 'string') draft.id = call.id;
          if (typeof call.type === 'string') draft.type = call.type;
          const fn = call.function as { name?: unknown; arguments?: unknown } | undefined;
          if (fn && typeof fn.name === 'string') draft.function.name += fn.name;
          if (fn && typeof fn.arguments === 'string') draft.function.arguments += fn.arguments;
          this.toolCalls.set(index, draft);
        }
      }
    }
  }

  message(): ChatMessage {
    const message: ChatMessage = { role: 'assistant', content: this.content };
    if (this.toolCalls.size > 0) {
      message.tool_calls = [...this.toolCalls.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([, d]) => ({ id: d.id ?? '', type: d.type ?? 'function', function: d.function }));
    }
    return message;
  }
}

/**
 * A session turn's stream, chunk by chunk: whole events out (one chunk's events joined into one buffer), the
 * assistant message rebuilt from them, and the final `data: [DONE]` held back (it goes out after the commit).
 * `select` decides what each event sends: its bytes, nothing (null), or other bytes (events held back before
 * it, then its own); everything when absent. Pure.
 */
export class TurnEvents {
  private readonly splitter = new SseSplitter();
  readonly turn = new TurnAccumulator();
  /** The upstream sent [DONE]. */
  done = false;

  constructor(private readonly select?: (parsed: unknown, raw: Buffer) => Buffer | null) {}

  /** The bytes to send for this chunk, or null for none. */
  push(chunk: Buffer): Buffer | null {
    const events = this.splitter.push(chunk);
    let out: Buffer[] | null = null;
    let bytes = 0;
    for (const event of events) {
      if (this.done) continue;
      if (event.data === '[DONE]') {
        this.done = true;
        continue;
      }
      let parsed: unknown;
      if (event.data !== null) {
        try {
          parsed = JSON.parse(event.data);
        } catch {
          // not JSON: forwarded as it is, nothing to accumulate
        }
        this.turn.add(parsed);
      }
      const send = this.select ? this.select(parsed, event.raw) : event.raw;
      if (send === null) continue;
      (out ??= []).push(send);
      bytes += send.length;
    }
    if (!out) return null;
    return out.length === 1 ? out[0]! : Buffer.concat(out, bytes);
  }
}

/** The message and finish reason of an engine's non-streamed reply body, or null when it holds no message. */
export function parseCompletion(reply: Buffer): { message: ChatMessage; finishReason: unknown } | null {
  let completion: unknown = null;
  try {
    completion = JSON.parse(reply.toString('utf8'));
  } catch {
    return null;
  }
  const message = replyMessage(completion);
  if (!message) return null;
  return { message, finishReason: (completion as { choices?: Array<{ finish_reason?: unknown }> }).choices?.[0]?.finish_reason };
}

/** The assistant message of a non-streaming chat.completion body (choice 0), or null if it has none. */
export function replyMessage(completion: unknown): ChatMessage | null {
  const choices = (completion as { choices?: unknown } | null)?.choices;
  if (!Array.isArray(choices) || choices.length === 0) return null;
  const first = (choices as Array<{ index?: number; message?: Record<string, unknown> }>).find((c) => (c.index ?? 0) === 0);
  const m = first?.message;
  if (!m || typeof m !== 'object') return null;
  const message: ChatMessage = {
    role: typeof m.role === 'string' ? m.role : 'assistant',
    content: typeof m.content === 'string' || Array.isArray(m.content) ? (m.content as string | unknown[]) : null,
  };
  if (Array.isArray(m.tool_calls) && m.tool_calls.length > 0) message.tool_calls = m.tool_calls as unknown[];
  return message;
}
