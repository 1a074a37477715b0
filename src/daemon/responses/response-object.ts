// The response object as OpenAI's API returns it (and as the official clients parse it), from what the
// daemon knows about one response. Pure.

import { randomUUID } from 'node:crypto';
import type { Item } from './items.js';
import type { ResponseSettings } from './request.js';

export interface ResponseState {
  id: string;
  /** ms since the epoch. */
  createdAt: number;
  model: string;
  status: 'in_progress' | 'completed' | 'incomplete' | 'failed';
  output: Item[];
  usage: { input: number; output: number } | null;
  previousResponseId: string | null;
  conversationId: string | null;
  store: boolean;
  settings: ResponseSettings;
  /** Why a response is incomplete (max_output_tokens), when it is. */
  incompleteReason?: string | null;
  error?: { code: string; message: string } | null;
}

export function responseObject(s: ResponseState): Record<string, unknown> {
  const { settings } = s;
  return {
    id: s.id,
    object: 'response',
    created_at: Math.floor(s.createdAt / 1000),
    status: s.status,
    background: false,
    error: s.error ?? null,
    incomplete_details: s.incompleteReason ? { reason: s.incompleteReason } : null,
    instructions: settings.instructions,
    max_output_tokens: settings.max_output_tokens,
    model: s.model,
    output: s.output,
    parallel_tool_calls: settings.parallel_tool_calls,
    previous_response_id: s.previousResponseId,
    conversation: s.conversationId === null ? null : { id: s.conversationId },
    reasoning: { effort: null, summary: null },
    store: s.store,
    temperature: settings.temperature,
    text: settings.text,
    tool_choice: settings.tool_choice,
    tools: settings.tools,
    top_p: settings.top_p,
    truncation: settings.truncation,
    usage:
      s.usage === null
        ? null
        : {
            input_tokens: s.usage.input,
            input_tokens_details: { cached_tokens: 0 },
            output_tokens: s.usage.output,
            output_tokens_details: { reasoning_tokens: 0 },
            total_tokens: s.usage.input + s.usage.output,
          },
    user: settings.user,
    metadata: settings.metadata,
  };
}

/**
 * A new chain's or conversation's session id: chain_ or conv_ and 32 random hex digits (122 random bits);
 * unstored_: the place a store: false response's ids name, which is never a session.
 */
export function newSessionId(prefix: 'chain' | 'conv' | 'unstored'): string {
  return `${prefix}_${randomUUID().replaceAll('-', '')}`;
}

/** A response's id names its session and turn: resp_<turn>_<session>. */
export function responseId(sessionId: string, turn: number): string {
  return `resp_${turn}_${sessionId}`;
}

const RESPONSE_ID = /^resp_(\d{1,15})_(.+)$/;

/** The session and turn a response id names; null for an id this server never gave out. */
export function parseResponseId(id: string): { sessionId: string; turn: number } | null {
  const m = RESPONSE_ID.exec(id);
  return m ? { sessionId: m[2]!, turn: Number(m[1]) } : null;
}
