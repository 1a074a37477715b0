/*
 * The Responses API's items and the chat messages the engine and the store know, both ways. Pure.
 *
 * One stored message is one item: a user's or an assistant's message, one function call (an assistant message
 * with one tool call), or one function call's output (a tool message). An item's id names the message it is
 * stored as, `msg_<seq>_<session>` (fc_, fco_ for calls and outputs), so it is known before the commit (the
 * stream announces it) and found again without an index. A chat-completions turn on the same session may hold
 * a text and several calls in one message: its calls are `fc_<seq>.<k>_<session>`.
 */

import type { ChatMessage } from '../../core/messages.js';

export type ContentPart = Record<string, unknown> & { type: string };

export interface MessageItem {
  type: 'message';
  id: string;
  status: 'completed' | 'in_progress' | 'incomplete';
  role: string;
  content: ContentPart[];
}

export interface FunctionCallItem {
  type: 'function_call';
  id: string;
  call_id: string;
  name: string;
  arguments: string;
  status: 'completed' | 'in_progress' | 'incomplete';
}

export interface FunctionCallOutputItem {
  type: 'function_call_output';
  id: string;
  call_id: string;
  output: string;
  status: 'completed';
}

export type Item = MessageItem | FunctionCallItem | FunctionCallOutputItem;

/** Where an item is stored: its session, its message's seq, and which tool call of that message (fc only). */
export interface ItemRef {
  kind: 'msg' | 'fc' | 'fco';
  seq: number;
  part: number;
  sessionId: string;
}

export function itemId(kind: ItemRef['kind'], seq: number, sessionId: string, part = 0): string {
  return part === 0 ? `${kind}_${seq}_${sessionId}` : `${kind}_${seq}.${part}_${sessionId}`;
}

const ITEM_ID = /^(msg|fc|fco)_(\d{1,15})(?:\.(\d{1,6}))?_(.+)$/;

/** The message an item id names; null for an id this server never gave out. */
export function parseItemId(id: string): ItemRef | null {
  const m = ITEM_ID.exec(id);
  if (!m) return null;
  return { kind: m[1] as ItemRef['kind'], seq: Number(m[2]), part: m[3] === undefined ? 0 : Number(m[3]), sessionId: m[4]! };
}

interface ToolCall {
  id?: unknown;
  type?: unknown;
  function?: { name?: unknown; arguments?: unknown };
}

function textOf(content: ChatMessage['content']): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content) {
    const t = (part as { text?: unknown }).text;
    if (typeof t === 'string') text += t;
  }
  return text;
}

function hasContent(content: ChatMessage['content']): boolean {
  return typeof content === 'string' ? content !== '' : Array.isArray(content) && content.length > 0;
}

/** A chat content part as an item's content part (input side: input_text, input_image; output side: output_text). */
function itemPart(part: unknown, output: boolean): ContentPart {
  const p = (part ?? {}) as Record<string, unknown>;
  if (p.type === 'image_url') {
    const image = (p.image_url ?? {}) as { url?: unknown; detail?: unknown };
    return { type: 'input_image', image_url: typeof image.url === 'string' ? image.url : null, detail: image.detail ?? 'auto' };
  }
  const text = typeof p.text === 'string' ? p.text : JSON.stringify(p);
  return output ? { type: 'output_text', text, annotations: [], logprobs: [] } : { type: 'input_text', text };
}

function messageContent(message: ChatMessage, output: boolean): ContentPart[] {
  const { content } = message;
  if (typeof content === 'string') return [itemPart({ text: content }, output)];
  if (Array.isArray(content)) return content.map((p) => itemPart(p, output));
  return output ? [itemPart({ text: '' }, true)] : [];
}

/** The items one stored message is, with their ids. */
export function itemsOf(message: ChatMessage, seq: number, sessionId: string): Item[] {
  if (message.role === 'tool') {
    return [
      {
        type: 'function_call_output',
        id: itemId('fco', seq, sessionId),
        call_id: message.tool_call_id ?? '',
        output: textOf(message.content),
        status: 'completed',
      },
    ];
  }
  const calls = (message.tool_calls ?? []) as ToolCall[];
  const items: Item[] = [];
  if (calls.length === 0 || hasContent(message.content)) {
    items.push({
      type: 'message',
      id: itemId('msg', seq, sessionId),
      status: 'completed',
      role: message.role,
      content: messageContent(message, message.role === 'assistant'),
    });
  }
  calls.forEach((call, k) => {
    items.push({
      type: 'function_call',
      id: itemId('fc', seq, sessionId, k),
      call_id: typeof call.id === 'string' ? call.id : '',
      name: typeof call.function?.name === 'string' ? call.function.name : '',
      arguments: typeof call.function?.arguments === 'string' ? call.function.arguments : '',
      status: 'completed',
    });
  });
  return items;
}

/** One item of a stored message (an id names the message and, for a call, which of its calls). */
export function itemOf(message: ChatMessage, ref: ItemRef): Item | null {
  const items = itemsOf(message, ref.seq, ref.sessionId);
  return items.find((i) => parseItemId(i.id)!.kind === ref.kind && parseItemId(i.id)!.part === ref.part) ?? null;
}

/** The stored message of one item (the inverse of itemsOf for items that are their message's only item). */
export function itemMessage(item: Item): ChatMessage {
  if (item.type === 'function_call') {
    return { role: 'assistant', content: null, tool_calls: [functionCall(item.call_id, item.name, item.arguments)] };
  }
  if (item.type === 'function_call_output') return { role: 'tool', tool_call_id: item.call_id, content: item.output };
  return { role: item.role, content: chatContent(item.content, item.role) };
}

export function functionCall(
  callId: string,
  name: string,
  args: string,
): { id: string; type: 'function'; function: { name: string; arguments: string } } {
  return { id: callId, type: 'function', function: { name, arguments: args } };
}

/**
 * An item's content parts as a chat message's content: one text, or parts (an image, several texts). An
 * assistant's text is one string (engines' chat templates expect it so).
 */
export function chatContent(parts: readonly ContentPart[], role: string): string | unknown[] {
  const texts: string[] = [];
  let onlyText = true;
  for (const p of parts) {
    if (typeof p.text === 'string' && p.type !== 'input_image') texts.push(p.text);
    else if (p.type === 'refusal' && typeof p.refusal === 'string') texts.push(p.refusal);
    else onlyText = false;
  }
  if (onlyText && (texts.length <= 1 || role === 'assistant')) return texts.join('');
  return parts.map((p) => {
    if (p.type === 'input_image') {
      const detail = typeof p.detail === 'string' ? { detail: p.detail } : {};
      return { type: 'image_url', image_url: { url: p.image_url, ...detail } };
    }
    if (p.type === 'refusal') return { type: 'text', text: p.refusal };
    return { type: 'text', text: p.text };
  });
}

/**
 * A reply as the items it is stored as: its text (when it has one, or when it has nothing else) and each
 * tool call on its own.
 */
export function replyRows(reply: ChatMessage): ChatMessage[] {
  const calls = (reply.tool_calls ?? []) as ToolCall[];
  if (calls.length === 0)
    return [{ role: 'assistant', content: typeof reply.content === 'string' ? reply.content : textOf(reply.content) }];
  const rows: ChatMessage[] = [];
  if (hasContent(reply.content)) rows.push({ role: 'assistant', content: textOf(reply.content) });
  for (const call of calls) rows.push({ role: 'assistant', content: null, tool_calls: [call] });
  return rows;
}

/**
 * What the engine gets: the calls stored one to a message joined to the assistant message they follow, as a
 * model produces them (one assistant message with its text and all its calls, then the results). The
 * messages given are not changed; a history without such calls comes back as it is.
 */
export function forEngine(messages: readonly ChatMessage[]): ChatMessage[] {
  let out: ChatMessage[] | null = null;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i]!;
    const prev = out ? out[out.length - 1] : messages[i - 1];
    const joins =
      m.role === 'assistant' &&
      !hasContent(m.content) &&
      m.tool_calls !== undefined &&
      m.tool_calls.length > 0 &&
      prev?.role === 'assistant';
    if (!joins) {
      out?.push(m);
      continue;
    }
    out ??= messages.slice(0, i);
    const before = out[out.length - 1]!;
    out[out.length - 1] = {
      ...before,
      content: hasContent(before.content) ? before.content : null,
      tool_calls: [...(before.tool_calls ?? []), ...m.tool_calls!],
    };
  }
  return out ?? (messages as ChatMessage[]);
}
