import { ConfigError } from '../core/errors.js';
import { DEFAULT_TENANT } from '../core/tenant.js';
import type { ChatMessage } from '../core/messages.js';
import type { Detector } from '../compliance/detectors.js';
import type { AttachmentPolicy } from '../compliance/redact.js';
import type { ContentCipher } from './crypto.js';

/** A stored message with the turn it belongs to (all messages one request stored share a turn). */
export interface StoredMessage {
  turn: number;
  message: ChatMessage;
}

export interface SessionInfo {
  /** The tenant the session belongs to: part of its key, with id. */
  tenant: string;
  id: string;
  profile: string;
  createdAt: number;
  updatedAt: number;
  expiresAt: number;
  turns: number;
}

/** Everything kept about one session, expired or not: its row and every message with its time. */
export type SessionExport = SessionInfo & { messages: Array<ChatMessage & { turn: number; createdAt: number }> };

export interface SessionPage {
  sessions: SessionInfo[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  nextCursor: string | null;
}

/**
 * The daemon's memory. A session is keyed by (tenant, id): every call that names one takes its tenant, so no
 * call can reach another tenant's conversation by id alone. Times are milliseconds since the epoch, passed in
 * so callers (and tests) own the clock. An expired session is treated as absent everywhere, even before the
 * sweeper deletes it.
 */
export interface SessionStore {
  /** The messages of the last `turns` turns, oldest first; [] for an absent or expired session. */
  loadWindow(tenant: string, id: string, turns: number, now: number): Promise<StoredMessage[]>;
  /**
   * Stores one turn (the request's new messages and the reply) in one transaction and renews the TTL. `alone`:
   * no other turn is under way in this process, so none can share this one's commit (the SQLite store's
   * group-commit.ts then commits it at once instead of after the current poll phase).
   */
  appendTurn(
    tenant: string,
    id: string,
    profile: string,
    messages: ChatMessage[],
    ttlMs: number,
    now: number,
    alone?: boolean,
  ): Promise<void>;
  get(tenant: string, id: string, now: number): Promise<(SessionInfo & { messages: ChatMessage[] }) | null>;
  /**
   * Live sessions, the latest to expire (the most recently used, within a TTL) first: one tenant's, or with
   * `tenant` null every tenant's (an operator's view).
   */
  list(options: { tenant: string | null; now: number; limit: number; cursor?: string | null }): Promise<SessionPage>;
  /**
   * A tenant's live sessions, counted up to `atMost` (a quota's bound: the count stops there), when the first
   * of them expires, and whether session `id` is one of them: what a maxSessions quota needs.
   */
  liveSessions(
    tenant: string,
    id: string,
    now: number,
    atMost: number,
  ): Promise<{ live: number; nextExpiry: number | null; exists: boolean }>;
  /** true when the session existed (expired or not). */
  delete(tenant: string, id: string): Promise<boolean>;
  /** Deletes every session of a tenant (expired or not); returns how many went. */
  deleteTenant(tenant: string): Promise<number>;
  /**
   * Deletes up to `batch` expired sessions, of every tenant or (`tenant`) of one; returns how many went. Call
   * again while it returns `batch`.
   */
  sweepExpired(now: number, batch?: number, tenant?: string | null): Promise<number>;
  /** Deletes sessions not updated since `before`, of one tenant or (null) of all; returns how many went. */
  pruneOlderThan(before: number, tenant?: string | null): Promise<number>;
  /**
   * Everything kept about one session, expired or not (a subject access request): its row and every
   * message with its time; null when it is not in the database.
   */
  export(tenant: string, id: string): Promise<SessionExport | null>;
  /**
   * After a delete, sweep or prune: resolves true once the deleted text is gone from the database and WAL
   * files (a TRUNCATE checkpoint), or false when that did not happen within waitMs (it is retried in the
   * background). Deletions ask for it themselves; this only waits.
   */
  scrubbed(waitMs?: number): Promise<boolean>;
  /**
   * Applies the profiles' retention to sessions stored before it was set or lowered: up to `batch` sessions
   * after `after` (in (tenant, id) order; null: from the start) get their expiry capped at first turn +
   * retention. Returns where to go on (null when done) and how many were capped; the sweeper then deletes
   * those past it.
   */
  capRetention(after: SessionRef | null, batch?: number): Promise<{ next: SessionRef | null; capped: number }>;
}

/** A session's key. */
export interface SessionRef {
  tenant: string;
  id: string;
}

/**
 * What protects message contents on their way into the database (docs/data-flow.md): redaction first
 * (always, with the default detectors unless told otherwise), then encryption when a key is configured.
 */
export interface ContentProtection {
  /** Detectors whose matches are replaced by [LABEL] in every text field stored; default: the built-in ones. */
  detectors?: readonly Detector[];
  /** Images, audio and files in stored messages: a placeholder part (default), or kept as sent. */
  attachments?: AttachmentPolicy;
  /** Encrypts content, tool calls and name of new rows; null/absent: stored as (redacted) plain text. */
  cipher?: ContentCipher | null;
  /** Keys that may decrypt rows (the current one is added); for reading during a rotation. */
  readKeys?: readonly ContentCipher[];
  /** The longest a session of this profile may be kept, from its first turn, in ms; null: its TTL alone. */
  retentionMs?: (profile: string) => number | null;
  /**
   * False when retentionMs is null for every profile: the start-up pass that caps stored sessions
   * (capRetention) then has nothing to cap and reads none (at 100k sessions it held 15-25 MiB of the idle
   * daemon's RSS). Absent: there is a retention when retentionMs is given.
   */
  anyRetention?: boolean;
  onScrubError?: (err: unknown) => void;
}

export type EncryptedField = 'content' | 'tool_calls' | 'name';

/**
 * Additional data that binds an encrypted value to its row: a value copied to another row, or to the same
 * session id of another tenant, will not decrypt. The default tenant's context is the one rows had before
 * tenants (so they still open); another tenant's name is appended to it.
 */
export function contentContext(tenant: string, sessionId: string, seq: number, field: EncryptedField): string {
  const base = `${sessionId}\u0000${seq}\u0000${field}`;
  return tenant === DEFAULT_TENANT ? base : `${base}\u0000${tenant}`;
}

export function missingKeyError(keyId: string, cipher: ContentCipher | null | undefined): ConfigError {
  return new ConfigError(
    cipher
      ? `stored messages are encrypted with key ${keyId}, but the key in force is ${cipher.keyId}`
      : `stored messages are encrypted (key ${keyId}) and no encryption key is configured`,
    {
      next: `Set CS_LLM_STORE_KEY (base64 of 32 bytes) or store.encryption.keyFile in the config to the key with id ${keyId}; cs-llm store key-id --key-file F prints a file's id.`,
    },
  );
}

/** A cursor that did not come from list(). */
export class InvalidCursorError extends Error {}
