// The SQLite session store's own interface (sqlite-sessions.ts): the SessionStore's calls run synchronously, and
// what the store's other modules (sqlite-store.ts, sqlite-responses.ts) use besides.
import type { ChatMessage } from '../core/messages.js';
import type { ContentCipher } from './crypto.js';
import type { Synchronous } from './database.js';
import type { SessionStore } from './sessions.js';

/** What a caller stores with a turn besides its messages, in the same transaction (the Responses API's records). */
export interface TurnExtra {
  /** The value of the turn's last message's `response` column, from the turn's number and its first message's seq. */
  record?: (turn: number, firstSeq: number) => string;
  /** Runs after the messages are in. */
  then?: () => void;
}

export type SqliteSessions = Synchronous<Omit<SessionStore, 'scrubbed' | 'pruneOlderThan' | 'deleteTenant' | 'appendTurn'>> & {
  /** SessionStore.appendTurn; `then` runs in the same transaction (rows of the caller's that go with the turn). */
  appendTurn(tenant: string, id: string, profile: string, messages: ChatMessage[], ttlMs: number, now: number, extra?: TurnExtra): void;
  /** Several turns in one transaction, each in a savepoint: the error of each turn kept out (group-commit.ts). */
  appendTurns(turns: readonly TurnArgs[]): unknown[];
  /** Drops what is kept in memory of the session (its rows changed under it: sqlite-responses.ts's deletes). */
  forget(tenant: string, id: string): void;
  /** Deletes up to `batch` sessions (of `tenant`, or of every tenant) not updated since `before`; returns how many went. */
  pruneStale(before: number, batch: number, tenant: string | null): number;
  /** Deletes up to `batch` sessions of `tenant`; returns how many went. */
  deleteOfTenant(tenant: string, batch: number): number;
  /** From now on new rows are encrypted with `next`; rows under the keys in use so far still open. */
  encryptWith(next: ContentCipher): void;
};

/** appendTurn's arguments: tenant, id, profile, messages, ttlMs, now. */
export type TurnArgs = [string, string, string, ChatMessage[], number, number];

export interface BumpParams {
  tenant: string;
  profile: string;
  now: number;
  expires: number;
  /** The profile's retention in ms, or null when it keeps sessions as long as they are used. */
  keep: number | null;
  added: number;
  id: string;
}
