// One turn of a session, whatever wire shape asked for it (chat completions with X-Session-Id today, the
// Responses API next): the session's lock, the history window, and the commit of the new messages with the
// reply in one transaction. Messages in, a reply message out; the caller relays the reply and sends its
// last byte only after commit() returned.
import type { Profile } from '../core/config.js';
import type { ChatMessage } from '../core/messages.js';
import type { StoredMessage } from '../store/sessions.js';
import { StoreUnavailableError } from '../store/store.js';
import { ApiError, storeUnavailable } from './api-error.js';
import type { RequestContext } from './routes.js';
import type { DaemonServices } from './services.js';
import { SessionBusyError, SessionQueueFullError } from './session-lock.js';
import { completionReserve, estimateAllTokens, selectWindow } from './window.js';

export interface TurnRequest {
  /** The tenant the session belongs to (the caller's): part of the session's key with sessionId. */
  tenant: string;
  sessionId: string;
  profileName: string;
  profile: Profile;
  /** The request's own system and developer messages: sent after the profile's prompt, never stored. */
  system: ChatMessage[];
  /** The messages to store with the reply (user, assistant, tool); at least one. */
  newMessages: ChatMessage[];
  /** Tokens asked for the reply (max_tokens), kept free in the window's budget; else a default reserve. */
  replyTokens?: number | null | undefined;
  /**
   * Where the history comes from and where the turn goes; absent: the session store's session `sessionId`. The
   * Responses API passes its own (a branch of a chain reads its parent's turns; a commit also stores the
   * response's record), still under this session's lock and with this window and commit.
   */
  record?: TurnRecord;
}

export interface TurnRecord {
  /** The stored messages of the last `turns` turns, oldest first (as SessionStore.loadWindow). */
  loadWindow(turns: number, now: number): Promise<StoredMessage[]>;
  /** Stores the turn's messages in one transaction (as SessionStore.appendTurn). */
  append(messages: ChatMessage[], ttlMs: number, now: number): Promise<void>;
}

export interface SessionTurn {
  readonly tenant: string;
  readonly id: string;
  readonly profileName: string;
  readonly profile: Profile;
  /** What the engine gets: the profile's system prompt, the request's system messages, the window, the new messages. */
  readonly messages: ChatMessage[];
  /** No stored turn came before this one: it starts the session (or starts it again after it expired). */
  readonly starts: boolean;
  /**
   * Stores the new messages, the messages the daemon produced on the way (a tool round's calls and results)
   * and the reply (one message, or several when the caller stores its items apart), in one transaction. Throws the client's 500 (store_failed) when it could not.
   */
  commit(reply: ChatMessage | readonly ChatMessage[], produced?: readonly ChatMessage[]): Promise<void>;
}

/** The request's messages split into those sent only (system, developer) and those stored with the turn. */
export function splitMessages(messages: readonly ChatMessage[]): { system: ChatMessage[]; newMessages: ChatMessage[] } {
  const system: ChatMessage[] = [];
  const newMessages: ChatMessage[] = [];
  for (const m of messages) {
    if (m.role === 'system' || m.role === 'developer') system.push(m);
    else newMessages.push(m);
  }
  return { system, newMessages };
}

/**
 * Runs `work` holding the session's lock, with the turn's messages (window loaded); the lock is released when
 * `work` settles. A request that waits longer than daemon.sessionWaitMs gets 409 session_busy; one that would
 * wait behind more than admission.maxQueue others gets 429 session_queue_full at once.
 */
export async function runTurn(
  services: DaemonServices,
  ctx: RequestContext,
  request: TurnRequest,
  work: (turn: SessionTurn) => Promise<void>,
): Promise<void> {
  const { config } = services;
  const { tenant, sessionId, profile } = request;
  let release: () => void;
  try {
    release = await services.locks.acquire(tenant, sessionId, config.daemon.sessionWaitMs, config.daemon.admission.maxQueue);
  } catch (err) {
    if (err instanceof SessionQueueFullError) {
      throw new ApiError(429, `${err.message}; retry after the turns before it, one at a time`, {
        code: 'session_queue_full',
        headers: { 'retry-after': '1' },
      });
    }
    if (err instanceof SessionBusyError) {
      throw new ApiError(409, `${err.message}; send the next turn after the previous reply, or use another X-Session-Id`, {
        code: 'session_busy',
      });
    }
    throw err;
  }
  try {
    if (ctx.res.destroyed) {
      // The client left while this turn waited for its session.
      ctx.record.outcome = 'client_closed';
      return;
    }
    const { record } = request;
    const history = record
      ? await record.loadWindow(profile.historyTurns, services.now())
      : await services.store.sessions.loadWindow(tenant, sessionId, profile.historyTurns, services.now());
    const maxSessions = services.quotas.maxSessions(tenant);
    if (maxSessions > 0 && history.length === 0) {
      // An empty window: a new session, unless a live one has no turns in its window (historyTurns 0).
      const now = services.now();
      const count = await services.store.sessions.liveSessions(tenant, sessionId, now, maxSessions);
      if (!count.exists && count.live >= maxSessions) throw services.quotas.refuseSession(tenant, count.nextExpiry, now);
    }
    const system: ChatMessage[] = profile.systemPrompt ? [{ role: 'system', content: profile.systemPrompt }] : [];
    system.push(...request.system);
    let window: ChatMessage[] = [];
    if (history.length > 0) {
      const info = profile.contextTokens === null ? await services.upstreamInfo.get() : null;
      const context = profile.contextTokens ?? info?.contextTokens ?? null;
      const budget =
        context === null
          ? null
          : Math.max(
              0,
              context -
                completionReserve(request.replyTokens, context) -
                estimateAllTokens(system) -
                estimateAllTokens(request.newMessages),
            );
      window = selectWindow({
        history,
        maxTurns: profile.historyTurns,
        tokenBudget: budget,
        keepLast: request.newMessages[0]?.role === 'tool',
      });
    }
    const ttlMs = profile.ttlSeconds * 1000;
    await work({
      tenant,
      id: sessionId,
      profileName: request.profileName,
      profile,
      messages: [...system, ...window, ...request.newMessages],
      // A profile that keeps no history loads none, so it cannot tell: its turns never count as starts.
      starts: history.length === 0 && profile.historyTurns > 0,
      commit: async (reply, produced = []) => {
        const messages = Array.isArray(reply)
          ? [...request.newMessages, ...produced, ...(reply as readonly ChatMessage[])]
          : [...request.newMessages, ...produced, reply as ChatMessage];
        try {
          if (record) await record.append(messages, ttlMs, services.now());
          else {
            // The only session held is this one: no other turn is under way that could share its commit.
            const alone = services.locks.size === 1;
            await services.store.sessions.appendTurn(tenant, sessionId, request.profileName, messages, ttlMs, services.now(), alone);
          }
          services.logStoredTurn?.(sessionId, messages);
        } catch (err) {
          ctx.record.outcome = 'store_failed';
          services.log('storing a turn failed', (err as Error).message);
          // Not stored, not acknowledged: the client hears it and may send the turn again.
          if (err instanceof StoreUnavailableError) throw storeUnavailable(err);
          throw new ApiError(500, 'the reply could not be stored in the session database; the turn was not saved, retry it', {
            code: 'store_failed',
            headers: { 'x-session-id': sessionId },
          });
        }
      },
    });
  } finally {
    release();
  }
}
