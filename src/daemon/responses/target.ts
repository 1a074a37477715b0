/*
 * Where a response's turn goes, and the history it is answered with. A new chain is a new session named
 * after its first response; `conversation` is that session; `previous_response_id` continues the session of
 * that response when it is the session's latest turn. Continuing an earlier response (or one made in a
 * conversation) starts a branch: a new session whose history is its parent's up to that response's turn,
 * read from the parent (never copied, so erasing the parent's turns erases them for the branch too). The
 * decision is made under the lock of the session read from, so two requests continuing the same response
 * cannot both extend it.
 */

import type { SessionHead } from '../../store/responses.js';
import type { StoredMessage } from '../../store/sessions.js';
import { ApiError } from '../api-error.js';
import type { DaemonServices } from '../services.js';

/** Branches of branches are followed this deep for history; older ancestors are left out of the window. */
const MAX_BRANCH_DEPTH = 8;

export interface Target {
  /** The session the turn is stored in. */
  sessionId: string;
  /** Its counters before the turn (a new session: none yet). */
  head: SessionHead;
  /** A new branch: where its history continues. */
  branch: { parentId: string; parentTurn: number } | null;
}

export function previousNotFound(id: string): ApiError {
  return new ApiError(404, `Previous response with id '${id}' not found.`, {
    param: 'previous_response_id',
    code: 'previous_response_not_found',
  });
}

export function conversationNotFound(id: string): ApiError {
  return new ApiError(404, `Conversation with id '${id}' not found.`, { param: 'conversation', code: 'conversation_not_found' });
}

const EMPTY: SessionHead = { turns: 0, nextSeq: 0, createdAt: 0 };

/**
 * Decides the target; call it holding the lock of the session read from (the previous response's, the
 * conversation, or the new chain's). 404 when the previous response or the conversation is not there (never
 * stored, deleted, expired, or another tenant's).
 */
export async function resolveTarget(
  services: DaemonServices,
  tenant: string,
  how: { previous: { id: string; sessionId: string; turn: number } | null; conversationId: string | null; newId: () => string },
  now: number,
): Promise<Target> {
  const { responses } = services.store;
  if (how.previous) {
    const prev = how.previous;
    const found = await responses.continuation(tenant, prev.sessionId, prev.turn, now);
    if (!found) throw previousNotFound(prev.id);
    if (!found.conversation && found.head.turns === prev.turn) return { sessionId: prev.sessionId, head: found.head, branch: null };
    return { sessionId: how.newId(), head: EMPTY, branch: { parentId: prev.sessionId, parentTurn: prev.turn } };
  }
  if (how.conversationId !== null) {
    const head = await responses.head(tenant, how.conversationId, now);
    if (!head) throw conversationNotFound(how.conversationId);
    return { sessionId: how.conversationId, head, branch: null };
  }
  return { sessionId: how.newId(), head: EMPTY, branch: null };
}

function turnsIn(rows: readonly StoredMessage[]): number {
  let n = 0;
  let last = Number.NaN;
  for (const r of rows) {
    if (r.turn !== last) n++;
    last = r.turn;
  }
  return n;
}

/**
 * The last `maxTurns` turns of a session's history (up to turn `upto`, else all of it), followed into the
 * parent of a branch when the branch alone has fewer. An ancestor's turns are numbered below the branch's, so
 * the window tells them apart.
 */
export async function historyOf(
  services: DaemonServices,
  tenant: string,
  sessionId: string,
  upto: number | null,
  maxTurns: number,
  now: number,
  depth = 0,
): Promise<StoredMessage[]> {
  if (maxTurns <= 0) return [];
  const { store } = services;
  const own: StoredMessage[] =
    upto === null
      ? await store.sessions.loadWindow(tenant, sessionId, maxTurns, now)
      : (await store.responses.rows(tenant, sessionId, upto - maxTurns + 1, upto, now)).map((r) => ({ turn: r.turn, message: r.message }));
  const have = turnsIn(own);
  if (have >= maxTurns || depth >= MAX_BRANCH_DEPTH || (own.length > 0 && own[0]!.turn > 1)) return own;
  const thread = await store.responses.thread(tenant, sessionId);
  if (thread?.kind !== 'branch' || thread.parentId === null || thread.parentTurn === null) return own;
  const before = await historyOf(services, tenant, thread.parentId, thread.parentTurn, maxTurns - have, now, depth + 1);
  const shift = thread.parentTurn + 1;
  return [...before.map((m) => ({ turn: m.turn - shift, message: m.message })), ...own];
}
