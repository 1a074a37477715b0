/*
 * OpenAI chat messages -> node-llama-cpp chat history (pure). system and developer become the system
 * item, user the user item, assistant the model item; tool results are shown to the model as user text
 * (the tiny and GGUF chat templates here have no tool role the engine can drive). Consecutive items of
 * one kind are joined, and an empty model item is appended: the turn the model is asked to write.
 */

import type { HistoryItem } from './runtime.js';

export interface ChatMessageLike {
  role: string;
  content?: unknown;
  name?: unknown;
}

/** Text of a message's content: a string, or the text parts of a content array. */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content)) {
    return content
      .map((part) =>
        part && typeof part === 'object' && (part as { type?: unknown }).type === 'text'
          ? String((part as { text?: unknown }).text ?? '')
          : '',
      )
      .join('');
  }
  return '';
}

export function toChatHistory(messages: readonly ChatMessageLike[]): HistoryItem[] {
  const items: HistoryItem[] = [];
  for (const message of messages) {
    const text = messageText(message.content);
    const kind: HistoryItem['type'] =
      message.role === 'assistant' ? 'model' : message.role === 'system' || message.role === 'developer' ? 'system' : 'user';
    const shown = message.role === 'tool' ? `Tool result: ${text}` : text;
    const last = items[items.length - 1];
    if (last && last.type === kind) {
      if (last.type === 'model') last.response[0] = `${last.response[0] ?? ''}\n${shown}`;
      else last.text = `${last.text}\n${shown}`;
      continue;
    }
    items.push(kind === 'model' ? { type: 'model', response: [shown] } : { type: kind, text: shown });
  }
  items.push({ type: 'model', response: [] });
  return items;
}
