// The rows of the sessions and messages tables as sqlite-sessions.ts reads them, and turning them back into
// what the SessionStore returns: messages, session info.

import type { ChatMessage } from '../core/messages.js';
import type { EncryptedField, SessionInfo } from './sessions.js';

export interface MessageRow {
  turn: number;
  role: string;
  content: string | Uint8Array | null;
  content_parts: number;
  tool_calls: string | Uint8Array | null;
  tool_call_id: string | null;
  name: string | Uint8Array | null;
  seq: number;
  key_id: string | null;
  created_at: number;
}

export type RawMessageRow = [
  number,
  string,
  string | Uint8Array | null,
  number,
  string | Uint8Array | null,
  string | null,
  string | Uint8Array | null,
  number,
  string | null,
];

export interface SessionRow {
  tenant: string;
  id: string;
  profile: string;
  created_at: number;
  updated_at: number;
  expires_at: number;
  turns: number;
  next_seq: number;
}

export function messageFrom(
  role: string,
  content: string | null,
  contentParts: number,
  toolCalls: string | null,
  toolCallId: string | null,
  name: string | null,
): ChatMessage {
  const message: ChatMessage = { role, content: contentParts === 1 && content !== null ? (JSON.parse(content) as unknown[]) : content };
  if (toolCalls !== null) message.tool_calls = JSON.parse(toolCalls) as unknown[];
  if (toolCallId !== null) message.tool_call_id = toolCallId;
  if (name !== null) message.name = name;
  return message;
}

/** Turns a stored value back into text: as it is, or decrypted with the key that encrypted it. */
export type Reveal = (value: string | Uint8Array | null, keyId: string | null, seq: number, field: EncryptedField) => string | null;

/** Where a decrypted value is kept in a session's cache: three fields per message. */
export const slotOf = (seq: number, field: EncryptedField): number => seq * 3 + (field === 'content' ? 0 : field === 'tool_calls' ? 1 : 2);

/** A stored value as text: from the session's cache of decrypted values, else opened and kept there. */
export function openCached(
  cache: Map<number, string | null>,
  open: Reveal,
  value: string | Uint8Array | null,
  keyId: string | null,
  seq: number,
  field: EncryptedField,
): string | null {
  if (value === null || keyId === null) return value as string | null;
  const slot = slotOf(seq, field);
  const hit = cache.get(slot);
  if (hit !== undefined) return hit;
  const text = open(value, keyId, seq, field);
  cache.set(slot, text);
  return text;
}

export function toInfo(row: SessionRow): SessionInfo {
  return {
    tenant: row.tenant,
    id: row.id,
    profile: row.profile,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    turns: row.turns,
  };
}
