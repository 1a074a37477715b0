// The Responses and Conversations APIs' records. A chain of responses and a conversation are sessions like
// an X-Session-Id one (the same rows in sessions and messages, the same retention, redaction, encryption,
// export and erasure): a response is one turn of its session, the turn's messages its input and output
// items. What the sessions table does not hold lives beside it, keyed by (tenant, id), and goes with the
// session: a response's record (its turn, which of the turn's messages are input and which output, model,
// status, usage, and the settings it was asked with, redacted and encrypted like content), and a thread's
// (a conversation's metadata; where a branch of a chain leaves its parent).

import type { ChatMessage } from '../core/messages.js';

/**
 * What is kept about one response besides its items. A response is named by its session and turn (its id,
 * resp_<turn>_<session>, says both), so it is found with the session's own key, and no index is kept for it.
 */
export interface ResponseRecord {
  sessionId: string;
  /** Its turn in the session. */
  turn: number;
  /** The seq of the turn's first message; the first `inputs` of them are the input items. */
  firstSeq: number;
  inputs: number;
  /** Messages from this seq on are the output items (those between: server-side tool rounds). */
  outputSeq: number;
  previousId: string | null;
  /** Created in a conversation (`sessionId` is the conversation), not a chain. */
  conversation: boolean;
  createdAt: number;
  model: string;
  status: string;
  inputTokens: number | null;
  outputTokens: number | null;
  /**
   * The settings the response repeats that differ from their defaults (metadata, tools, temperature, ...):
   * stored redacted, encrypted with a key; none stored when all are defaults.
   */
  settings: Record<string, unknown>;
}

/** A stored message with where it is. */
export interface StoredRow {
  turn: number;
  seq: number;
  message: ChatMessage;
}

/** A live session's counters: the next turn's number is turns + 1, its first message's seq nextSeq. */
export interface SessionHead {
  turns: number;
  nextSeq: number;
  createdAt: number;
}

export interface ThreadRecord {
  kind: 'conversation' | 'branch';
  createdAt: number;
  metadata: Record<string, string>;
  /** A branch: the session and turn its history continues from. */
  parentId: string | null;
  parentTurn: number | null;
}

/** What a commit stores besides the turn's messages. */
export interface CommitResponse {
  record: Omit<ResponseRecord, 'turn' | 'firstSeq' | 'outputSeq' | 'sessionId'> & { outputs: number };
  /** A new branch's thread row (its parent), stored with its first turn. */
  branch?: { parentId: string; parentTurn: number } | null;
}

/** Everything but time is per tenant: no call reaches another tenant's rows. Expired sessions read as absent. */
export interface ResponseStore {
  head(tenant: string, sessionId: string, now: number): Promise<SessionHead | null>;
  /**
   * Where a response continuing turn `turn` of a live session goes: the session's counters, and whether that
   * turn's response was made in a conversation; null when there is no such stored response.
   */
  continuation(tenant: string, sessionId: string, turn: number, now: number): Promise<{ head: SessionHead; conversation: boolean } | null>;
  /** A response whose session is live. */
  get(tenant: string, sessionId: string, turn: number, now: number): Promise<ResponseRecord | null>;
  /** Messages of a live session from turn `fromTurn` to `toTurn` (inclusive), in order. */
  rows(tenant: string, sessionId: string, fromTurn: number, toTurn: number, now: number): Promise<StoredRow[]>;
  /** One message of a live session. */
  row(tenant: string, sessionId: string, seq: number, now: number): Promise<StoredRow | null>;
  /**
   * One turn: the messages appended to the session (as SessionStore.appendTurn) and the response's record, in
   * one transaction.
   */
  commit(
    tenant: string,
    sessionId: string,
    profile: string,
    messages: ChatMessage[],
    ttlMs: number,
    now: number,
    response: CommitResponse | null,
  ): Promise<void>;
  /** Deletes a response: its record and its turn's messages. true when it existed. */
  delete(tenant: string, sessionId: string, turn: number): Promise<boolean>;
  /** Deletes one message; true when it existed. */
  deleteRow(tenant: string, sessionId: string, seq: number): Promise<boolean>;
  thread(tenant: string, sessionId: string): Promise<ThreadRecord | null>;
  /** A new conversation: its session (no turns yet, or `messages` as its first) and its thread row. */
  createConversation(
    tenant: string,
    id: string,
    profile: string,
    metadata: Record<string, string>,
    messages: ChatMessage[],
    ttlMs: number,
    now: number,
  ): Promise<void>;
  /** A conversation's metadata replaced (a session without a thread row gets one). false when not live. */
  setMetadata(tenant: string, id: string, metadata: Record<string, string>, now: number): Promise<boolean>;
}
