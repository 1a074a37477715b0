// POST /v1/responses: a turn of a session (turn.ts: lock, window, commit) asked in the Responses shape. The
// request's items become the turn's new messages; where the turn goes (a new chain, the previous response's
// session or a branch of it, a conversation) is decided under the lock (target.ts); the engine gets a chat
// completion (answer.ts); a stored response's record goes in the same transaction as its turn.
import type { ChatMessage } from '../../core/messages.js';
import { ApiError } from '../api-error.js';
import { readBody } from '../body.js';
import { admitted } from '../handlers/chat-completions.js';
import { requestHeader } from '../relay.js';
import type { RequestContext } from '../routes.js';
import type { DaemonServices } from '../services.js';
import { runTurn, type TurnRecord } from '../turn.js';
import { answer, type Outcome } from './answer.js';
import { profileOf, tenantOf } from './caller.js';
import { forEngine, itemMessage, itemOf, parseItemId } from './items.js';
import { parseResponsesRequest, settingsToStore, type InputEntry } from './request.js';
import { newSessionId, parseResponseId, responseId } from './response-object.js';
import { historyOf, previousNotFound, resolveTarget, type Target } from './target.js';

/** JSON only, as for chat completions: a page on another site cannot post it without a preflight. */
export async function readJson(services: DaemonServices, ctx: RequestContext): Promise<unknown> {
  if (!/^application\/json\b/i.test(requestHeader(ctx.req, 'content-type') ?? '')) {
    throw new ApiError(415, 'send the body as JSON with Content-Type: application/json', { code: 'unsupported_media_type' });
  }
  const raw = await readBody(ctx.req, services.config.daemon.bodyLimitBytes);
  try {
    return JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new ApiError(400, `the request body is not valid JSON: ${(err as Error).message}`, { code: 'invalid_json' });
  }
}

/** Earlier items named by item_reference, as the messages they were stored as (this tenant's live sessions only). */
export async function resolveEntries(services: DaemonServices, tenant: string, entries: InputEntry[], now: number): Promise<ChatMessage[]> {
  const out: ChatMessage[] = [];
  for (const entry of entries) {
    if ('message' in entry) {
      out.push(entry.message);
      continue;
    }
    const ref = parseItemId(entry.reference);
    const row = ref ? await services.store.responses.row(tenant, ref.sessionId, ref.seq, now) : null;
    const item = ref && row ? itemOf(row.message, ref) : null;
    if (!item) {
      throw new ApiError(404, `Item with id '${entry.reference}' not found.`, { param: `${entry.param}.id`, code: 'item_not_found' });
    }
    out.push(itemMessage(item));
  }
  return out;
}

export function createResponse(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const request = parseResponsesRequest(await readJson(services, ctx));
    ctx.record.stream = request.stream;
    ctx.record.session = true;
    const tenant = tenantOf(ctx);
    if (services.quotas.limitsTokens) services.quotas.admitTokens(tenant, Date.now());
    const { name: profileName, profile } = profileOf(services, ctx);
    const now = services.now();
    const newMessages = await resolveEntries(services, tenant, request.entries, now);

    let previous: { id: string; sessionId: string; turn: number } | null = null;
    if (request.previousResponseId !== null) {
      const ref = parseResponseId(request.previousResponseId);
      if (!ref) throw previousNotFound(request.previousResponseId);
      previous = { id: request.previousResponseId, ...ref };
    }
    // A new chain's id (also the id of a branch's session, made under the lock when it branches).
    const chainId = previous || request.conversationId !== null ? null : newSessionId('chain');
    const lockId = previous ? previous.sessionId : (request.conversationId ?? chainId!);
    const model = request.model ?? (await services.upstreamInfo.get())?.id ?? 'unknown';

    const unstoredId = request.store ? '' : newSessionId('unstored');
    let target: Target | null = null;
    let id = '';
    let pending: Outcome | null = null;
    const record: TurnRecord = {
      loadWindow: async (turns, at) => {
        target = await resolveTarget(
          services,
          tenant,
          { previous, conversationId: request.conversationId, newId: () => chainId ?? newSessionId('chain') },
          at,
        );
        // An unstored response's ids name nothing (a session that never exists): they can never come to name
        // a response or item stored later at the same place.
        id = request.store ? responseId(target.sessionId, target.head.turns + 1) : responseId(unstoredId, 1);
        ctx.record.sessionId = target.sessionId;
        if (target.branch) return historyOf(services, tenant, target.branch.parentId, target.branch.parentTurn, turns, at);
        if (target.head.turns === 0) return [];
        return historyOf(services, tenant, target.sessionId, null, turns, at);
      },
      append: async (messages, ttlMs, at) => {
        const t = target!;
        const outcome = pending!;
        await services.store.responses.commit(tenant, t.sessionId, profileName, messages, ttlMs, at, {
          record: {
            inputs: newMessages.length,
            outputs: outcome.rows.length,
            previousId: request.previousResponseId,
            conversation: request.conversationId !== null,
            createdAt: now,
            model,
            status: outcome.status,
            inputTokens: outcome.usage?.input ?? null,
            outputTokens: outcome.usage?.output ?? null,
            settings: settingsToStore(request.echo),
          },
          branch: t.branch,
        });
      },
    };

    await runTurn(
      services,
      ctx,
      {
        tenant,
        sessionId: lockId,
        profileName,
        profile,
        system: request.system,
        newMessages,
        replyTokens: request.maxOutputTokens,
        record,
      },
      async (turn) => {
        const t = target!;
        const payload: Record<string, unknown> = { ...request.chat, model, messages: forEngine(turn.messages), stream: request.stream };
        if (request.stream) payload.stream_options = { include_usage: true };
        await admitted(services, () =>
          answer(services, ctx, {
            turn,
            payload,
            stream: request.stream,
            serverTools:
              profile.tools.length > 0 && request.echo.tools.length === 0
                ? { names: profile.tools, maxRounds: profile.maxToolRounds ?? services.config.daemon.maxToolRounds }
                : null,
            draft: {
              id,
              createdAt: now,
              model,
              settings: request.echo,
              previousResponseId: request.previousResponseId,
              conversationId: request.conversationId,
              store: request.store,
              sessionId: request.store ? t.sessionId : unstoredId,
              inputEnd: request.store ? t.head.nextSeq + newMessages.length : newMessages.length,
            },
            save: async (outcome) => {
              if (!request.store) return;
              pending = outcome;
              await turn.commit(outcome.rows, outcome.produced);
            },
          }),
        );
      },
    );
  };
}
