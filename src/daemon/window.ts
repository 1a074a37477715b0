/*
 * The history window sent to the model: pure functions, no I/O.
 *
 * Tokens are estimated, not counted (the daemon has no tokenizer for every model): about 4 characters per
 * token plus a few tokens of chat-template overhead per message. Erring high only trims a little more.
 */

import type { ChatMessage } from '../core/messages.js';
import type { StoredMessage } from '../store/sessions.js';

const CHARS_PER_TOKEN = 4;
const TOKENS_PER_MESSAGE = 4;

export function estimateTokens(message: ChatMessage): number {
  let chars = 0;
  const content = message.content;
  if (typeof content === 'string') chars += content.length;
  else if (Array.isArray(content)) {
    for (const part of content) {
      const text = (part as { text?: unknown }).text;
      chars += typeof text === 'string' ? text.length : JSON.stringify(part).length;
    }
  }
  if (message.tool_calls) chars += JSON.stringify(message.tool_calls).length;
  if (message.name) chars += message.name.length;
  return Math.ceil(chars / CHARS_PER_TOKEN) + TOKENS_PER_MESSAGE;
}

export function estimateAllTokens(messages: readonly ChatMessage[]): number {
  let total = 0;
  for (const m of messages) total += estimateTokens(m);
  return total;
}

/** Tokens kept free for the reply: the request's max_tokens, else a quarter of the context up to 1024. */
export function completionReserve(maxTokens: number | null | undefined, contextTokens: number): number {
  if (typeof maxTokens === 'number' && maxTokens > 0) return maxTokens;
  return Math.min(1024, Math.floor(contextTokens / 4));
}

export interface WindowInput {
  /** Stored messages with their turn numbers, oldest first (what SessionStore.loadWindow returns). */
  history: readonly StoredMessage[];
  /** At most this many turns. */
  maxTurns: number;
  /** Tokens the history may use (context minus reply reserve minus system prompt and new messages); null = no bound. */
  tokenBudget: number | null;
  /**
   * The new messages start with tool results (a client that runs its own tools sends them in the turn after
   * the calls): the newest turns back to the one holding the calls are kept even over the limits, since the
   * engine refuses a result without its call.
   */
  keepLast?: boolean;
}

/**
 * The newest whole turns that fit both limits, oldest first. Turns are kept or dropped whole, so a tool
 * result never loses the assistant message that asked for it; a window that would start with an orphaned
 * tool result drops that turn too. With keepLast, the turns that hold the calls the new messages answer stay.
 */
export function selectWindow({ history, maxTurns, tokenBudget, keepLast = false }: WindowInput): ChatMessage[] {
  if (maxTurns <= 0 || history.length === 0) return [];
  const turns: ChatMessage[][] = [];
  let current = Number.NaN;
  for (const stored of history) {
    if (stored.turn !== current) {
      turns.push([]);
      current = stored.turn;
    }
    turns[turns.length - 1]!.push(stored.message);
  }
  let start = Math.max(0, turns.length - maxTurns);
  if (tokenBudget !== null) {
    let used = 0;
    for (let i = turns.length - 1; i >= start; i--) {
      used += estimateAllTokens(turns[i]!);
      if (used > tokenBudget) {
        start = i + 1;
        break;
      }
    }
  }
  if (keepLast) {
    // Back to the turn that made the calls: a turn that starts with results continues the one before it.
    let last = turns.length - 1;
    while (last > 0 && turns[last]![0]!.role === 'tool') last--;
    start = Math.min(start, last);
  }
  while (start < turns.length && turns[start]![0]!.role === 'tool') start++;
  const out: ChatMessage[] = [];
  for (let i = start; i < turns.length; i++) out.push(...turns[i]!);
  return out;
}
