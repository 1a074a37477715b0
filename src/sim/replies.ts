/*
 * Reply rules: the simulator's answer is a pure function of the request's conversation, so tests can
 * check that a proxy sent the whole history (memory) and drive the tool-calling loop. The rules are
 * documented in docs/sim.md; keep the two in step.
 */

import { createHash } from 'node:crypto';
import type { ChatMessage, ToolChoice, ToolDefinition } from '../openai-server/messages.js';
import { countTokens, splitTokens } from './tokenizer.js';

export interface ToolCall {
  id: string;
  name: string;
  /** JSON text, as OpenAI sends it. */
  arguments: string;
}

export type Reply = { kind: 'text'; text: string } | { kind: 'tool_calls'; calls: ToolCall[] };

/** "order 12345", "order number: 12345", "order #12345", "order no. 12345", or a bare "#12345". */
export const ORDER_NUMBER = /\border\b[^\d\n]{0,20}?(\d{4,})|#(\d{4,})\b/i;
/** Tools the rule will call on its own (tool_choice "auto"). */
export const ORDER_TOOL_NAME = /logistic|order|track|shipping/i;

const MAX_QUOTE_TOKENS = 24;
const MAX_COUNT = 20_000;

/** Text of a message's content: a string, or the text parts of a content array. */
export function messageText(message: ChatMessage): string {
  const { content } = message;
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown) =>
        part && typeof part === 'object' && typeof (part as { text?: unknown }).text === 'string' ? (part as { text: string }).text : '',
      )
      .filter((text) => text !== '')
      .join('\n');
  }
  return '';
}

/** Six hex digits that change whenever any role or text in the conversation changes. */
export function conversationHash(messages: readonly ChatMessage[]): string {
  const canonical = JSON.stringify(messages.map((m) => [m.role, messageText(m), m.tool_calls?.map((c) => c.function) ?? null]));
  return createHash('sha256').update(canonical).digest('hex').slice(0, 6);
}

/** Tokens the prompt counts for usage.prompt_tokens: per message one role token plus its text and tool calls, plus the tool definitions. */
export function promptTokenCount(messages: readonly ChatMessage[], tools?: readonly unknown[]): number {
  let total = 0;
  for (const message of messages) {
    total += 1 + countTokens(messageText(message));
    for (const call of message.tool_calls ?? []) total += countTokens(`${call.function?.name ?? ''} ${call.function?.arguments ?? ''}`);
  }
  if (tools && tools.length > 0) total += countTokens(JSON.stringify(tools));
  return total;
}

function quote(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  const pieces = splitTokens(flat);
  if (pieces.length <= MAX_QUOTE_TOKENS) return flat;
  return `${pieces.slice(0, MAX_QUOTE_TOKENS).join('').trim()}...`;
}

export function decideChatReply(request: {
  messages: readonly ChatMessage[];
  tools?: readonly ToolDefinition[];
  tool_choice?: ToolChoice;
}): Reply {
  const { messages } = request;
  const last = messages[messages.length - 1];
  if (last?.role === 'tool') return { kind: 'text', text: toolResultReply(messages) };

  const calls = toolCallsFor(request);
  if (calls) return { kind: 'tool_calls', calls };
  return { kind: 'text', text: textReply(messages) };
}

function textReply(messages: readonly ChatMessage[]): string {
  const userTexts = messages.filter((m) => m.role === 'user').map(messageText);
  const current = userTexts[userTexts.length - 1];
  if (current === undefined) return 'Hello! I am the cs-llm simulator. Send a user message and I will answer it.';

  if (/what\s+(?:was|is)\s+my\s+first\s+message/i.test(current)) {
    if (userTexts.length === 1) return 'This is your first message in this conversation, so there is nothing earlier to quote.';
    return `Your first message was: "${quote(userTexts[0]!)}".`;
  }

  if (/what(?:'s|\s+is)\s+my\s+name/i.test(current)) {
    for (let i = userTexts.length - 1; i >= 0; i--) {
      const match = /\bmy name is\s+([\p{L}][\p{L}'-]*)/iu.exec(userTexts[i]!);
      if (match) return `Your name is ${match[1]}.`;
    }
    return 'I do not know your name yet. Tell me with "my name is ..." and ask again.';
  }

  if (/how\s+many\s+messages/i.test(current)) {
    const n = userTexts.length;
    return `You have sent ${n} ${n === 1 ? 'message' : 'messages'} in this conversation, counting this one.`;
  }

  if (/system\s+prompt/i.test(current)) {
    const system = messages.filter((m) => m.role === 'system' || m.role === 'developer').map(messageText);
    if (system.length === 0) return 'I have no system prompt in this conversation.';
    return `My system prompt is: "${quote(system.join(' '))}".`;
  }

  const count = /\bcount\s+to\s+(\d+)/i.exec(current);
  if (count) {
    const n = Math.min(Number(count[1]), MAX_COUNT);
    return Array.from({ length: n }, (_, i) => String(i + 1)).join(' ');
  }

  return (
    `Turn ${userTexts.length}. You said: "${quote(current)}". ` +
    `I am the cs-llm simulator and I see ${messages.length} ${messages.length === 1 ? 'message' : 'messages'} in this conversation ` +
    `(conversation ${conversationHash(messages)}).`
  );
}

/** The tool rule: see docs/sim.md. Returns undefined when no tool should be called. */
function toolCallsFor(request: {
  messages: readonly ChatMessage[];
  tools?: readonly ToolDefinition[];
  tool_choice?: ToolChoice;
}): ToolCall[] | undefined {
  const tools = (request.tools ?? []).filter((t) => typeof t?.function?.name === 'string' && t.function.name !== '');
  const choice = request.tool_choice;
  if (tools.length === 0 || choice === 'none') return undefined;
  const last = request.messages[request.messages.length - 1];
  if (last?.role !== 'user') return undefined;

  const match = ORDER_NUMBER.exec(messageText(last));
  const orderNumber = match ? (match[1] ?? match[2]) : undefined;
  const orderTool = tools.find((t) => ORDER_TOOL_NAME.test(t.function!.name!));

  let tool: ToolDefinition | undefined;
  if (choice && typeof choice === 'object') tool = tools.find((t) => t.function!.name === choice.function?.name);
  else if (choice === 'required') tool = orderTool ?? tools[0];
  else if (orderNumber !== undefined) tool = orderTool;
  if (!tool) return undefined;

  const name = tool.function!.name!;
  const properties = tool.function?.parameters?.properties ?? {};
  const argName = Object.keys(properties)[0] ?? 'order_id';
  const argType = properties[argName]?.type;
  const args: Record<string, string | number> = {};
  if (orderNumber !== undefined) args[argName] = argType === 'integer' || argType === 'number' ? Number(orderNumber) : orderNumber;
  const id = `call_${createHash('sha256')
    .update(`${conversationHash(request.messages)}:${name}`)
    .digest('hex')
    .slice(0, 24)}`;
  return [{ id, name, arguments: JSON.stringify(args) }];
}

/** Answer to the tool messages that end the conversation, quoting their fields. */
function toolResultReply(messages: readonly ChatMessage[]): string {
  let start = messages.length;
  while (start > 0 && messages[start - 1]!.role === 'tool') start--;
  const results = messages.slice(start);
  const namesById = new Map<string, string>();
  for (const message of messages.slice(0, start)) {
    for (const call of message.tool_calls ?? []) if (call.id && call.function?.name) namesById.set(call.id, call.function.name);
  }
  const parts = results.map((result) => {
    const name = (result.tool_call_id && namesById.get(result.tool_call_id)) ?? result.name ?? 'the tool';
    return `According to ${name}, ${describeResult(messageText(result))}`;
  });
  return parts.join(' ');
}

function describeResult(text: string): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return `the result is "${quote(text)}".`;
  }
  if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
    const fields = Object.entries(parsed as Record<string, unknown>).slice(0, 8);
    if (fields.length === 0) return 'the result is empty.';
    const described = fields.map(([key, value]) => `${key} is ${typeof value === 'string' ? value : quote(JSON.stringify(value))}`);
    return `${described.join(', ')}.`;
  }
  return `the result is ${quote(JSON.stringify(parsed))}.`;
}

/** Reply to a legacy /v1/completions prompt. */
export function completionReply(prompt: string): string {
  const count = /\bcount\s+to\s+(\d+)/i.exec(prompt);
  if (count) return ` ${Array.from({ length: Math.min(Number(count[1]), MAX_COUNT) }, (_, i) => String(i + 1)).join(' ')}`;
  const hash = createHash('sha256').update(prompt).digest('hex').slice(0, 6);
  return ` and so the cs-llm simulator continues a prompt of ${countTokens(prompt)} tokens (prompt ${hash}).`;
}
