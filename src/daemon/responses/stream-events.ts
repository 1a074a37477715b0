/*
 * A streamed response: the engine's chat completion chunks as the Responses API's semantic events, in
 * OpenAI's order (output_item.added, content_part.added, output_text.delta..., output_text.done,
 * content_part.done, output_item.done; a function call's arguments deltas between its added and done), each
 * with the next sequence_number. The output items are kept in the order they were announced: that is the
 * order they are stored in, so the ids announced are the ids they are stored under. Pure.
 */

import { SseSplitter } from '../sse.js';
import { itemMessage, type FunctionCallItem, type Item, type MessageItem } from './items.js';
import type { ChatMessage } from '../../core/messages.js';

interface OpenCall {
  item: FunctionCallItem;
  index: number;
}

export class ResponseEvents {
  private sequence = 0;
  private readonly splitter = new SseSplitter();
  /** Output items in the order they were announced. */
  readonly output: Item[] = [];
  private text: { item: MessageItem; index: number; text: string } | null = null;
  private readonly calls = new Map<number, OpenCall>();
  /** The engine sent [DONE]. */
  done = false;
  /** The engine's in-stream error object, if it sent one. */
  error: unknown = null;
  finishReason: string | null = null;

  /** `idFor(kind, k)`: the id of the k-th output item (its stored message's). */
  constructor(private readonly idFor: (kind: 'msg' | 'fc', k: number) => string) {}

  /** One event's bytes, with the next sequence number. */
  event(type: string, fields: Record<string, unknown>): string {
    return `event: ${type}\ndata: ${JSON.stringify({ type, sequence_number: this.sequence++, ...fields })}\n\n`;
  }

  /** The events for this chunk of the engine's stream ('' for none). */
  push(chunk: Buffer): string {
    let out = '';
    for (const e of this.splitter.push(chunk)) {
      if (this.done || e.data === null) continue;
      if (e.data === '[DONE]') {
        this.done = true;
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(e.data);
      } catch {
        continue;
      }
      out += this.chunk(parsed);
    }
    return out;
  }

  private chunk(parsed: unknown): string {
    if (parsed === null || typeof parsed !== 'object') return '';
    const c = parsed as { error?: unknown; choices?: unknown };
    if (c.error !== undefined) {
      this.error = c.error;
      return '';
    }
    if (!Array.isArray(c.choices)) return '';
    let out = '';
    for (const choice of c.choices as Array<{ index?: number; delta?: Record<string, unknown>; finish_reason?: string | null }>) {
      if ((choice.index ?? 0) !== 0) continue;
      if (choice.finish_reason) this.finishReason = choice.finish_reason;
      const delta = choice.delta;
      if (!delta) continue;
      if (typeof delta.content === 'string' && delta.content !== '') out += this.textDelta(delta.content);
      if (Array.isArray(delta.tool_calls)) {
        for (const call of delta.tool_calls as Array<Record<string, unknown>>) out += this.callDelta(call);
      }
    }
    return out;
  }

  private textDelta(delta: string): string {
    const out = this.openText();
    const t = this.text!;
    t.text += delta;
    return (
      out + this.event('response.output_text.delta', { item_id: t.item.id, output_index: t.index, content_index: 0, delta, logprobs: [] })
    );
  }

  private openText(): string {
    let out = '';
    if (this.text === null) {
      const index = this.output.length;
      const item: MessageItem = { type: 'message', id: this.idFor('msg', index), status: 'in_progress', role: 'assistant', content: [] };
      this.output.push(item);
      this.text = { item, index, text: '' };
      out += this.event('response.output_item.added', { output_index: index, item });
      out += this.event('response.content_part.added', {
        item_id: item.id,
        output_index: index,
        content_index: 0,
        part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
      });
    }
    return out;
  }

  private callDelta(call: Record<string, unknown>): string {
    let out = '';
    const key = typeof call.index === 'number' ? call.index : this.calls.size;
    const fn = (call.function ?? {}) as { name?: unknown; arguments?: unknown };
    let open = this.calls.get(key);
    if (!open) {
      // A call after text: the text is complete (a model writes its calls after what it says).
      out += this.closeText();
      const index = this.output.length;
      const item: FunctionCallItem = {
        type: 'function_call',
        id: this.idFor('fc', index),
        call_id: typeof call.id === 'string' && call.id !== '' ? call.id : `call_${index}`,
        name: typeof fn.name === 'string' ? fn.name : '',
        arguments: '',
        status: 'in_progress',
      };
      this.output.push(item);
      open = { item, index };
      this.calls.set(key, open);
      out += this.event('response.output_item.added', { output_index: index, item: { ...item } });
    } else if (typeof fn.name === 'string') {
      open.item.name += fn.name;
    }
    if (typeof fn.arguments === 'string' && fn.arguments !== '') {
      open.item.arguments += fn.arguments;
      out += this.event('response.function_call_arguments.delta', { item_id: open.item.id, output_index: open.index, delta: fn.arguments });
    }
    return out;
  }

  private closeText(): string {
    const t = this.text;
    if (t === null) return '';
    this.text = null;
    const part = { type: 'output_text', text: t.text, annotations: [], logprobs: [] };
    t.item.content = [part];
    t.item.status = 'completed';
    return (
      this.event('response.output_text.done', { item_id: t.item.id, output_index: t.index, content_index: 0, text: t.text, logprobs: [] }) +
      this.event('response.content_part.done', { item_id: t.item.id, output_index: t.index, content_index: 0, part }) +
      this.event('response.output_item.done', { output_index: t.index, item: t.item })
    );
  }

  /**
   * The done events of every item still open, in their order. A reply without any output gets an empty
   * message, so that a response always has one (and a stored turn its reply).
   */
  finish(): string {
    let out = '';
    if (this.output.length === 0) out += this.openText();
    out += this.closeText();
    for (const { item, index } of [...this.calls.values()].sort((a, b) => a.index - b.index)) {
      item.status = 'completed';
      out += this.event('response.function_call_arguments.done', {
        item_id: item.id,
        output_index: index,
        name: item.name,
        arguments: item.arguments,
      });
      out += this.event('response.output_item.done', { output_index: index, item });
    }
    this.calls.clear();
    return out;
  }

  /** The stored messages of the output: one per item, in their order. */
  rows(): ChatMessage[] {
    return this.output.map(itemMessage);
  }
}
