// POST /v1/chat/completions. Without X-Session-Id: a stateless proxy that forwards the body's bytes as they
// came. With it: a turn of that session (src/daemon/turn.ts), relayed by src/daemon/chat-proxy.ts, or by the
// tools loop when the profile has server-side tools.
import type { ChatMessage } from '../../core/messages.js';
import { ApiError } from '../api-error.js';
import { readBody } from '../body.js';
import { proxyChat } from '../chat-proxy.js';
import { requestHeader } from '../relay.js';
import type { RequestContext } from '../routes.js';
import { SESSION_ID_PATTERN } from '../security.js';
import type { DaemonServices } from '../services.js';
import { toolTurn } from '../tools/tool-turn.js';
import { profileForCaller, requireProfileAllowed } from '../tenancy.js';
import { runTurn, splitMessages } from '../turn.js';
import { validateChatRequest, type ChatRequest } from '../validate.js';

function wantsUsage(request: ChatRequest): boolean {
  const options = (request as { stream_options?: unknown }).stream_options;
  return typeof options === 'object' && options !== null && (options as { include_usage?: unknown }).include_usage === true;
}

/** Runs `work` within an admission slot: at once when one is free, after a bounded wait, or 429. */
export async function admitted(services: DaemonServices, work: () => Promise<void>): Promise<void> {
  const slot = services.admission.acquire();
  const release = typeof slot === 'function' ? slot : await slot;
  try {
    await work();
  } finally {
    release();
  }
}

export function chatCompletions(services: DaemonServices) {
  const { config } = services;
  return async (ctx: RequestContext): Promise<void> => {
    // A tenant whose tokens today reached its quota gets nothing more from the engine until midnight (UTC).
    if (services.quotas.limitsTokens) services.quotas.admitTokens(ctx.caller.tenant, Date.now());
    // JSON only: a page on another site cannot send application/json without a CORS preflight, which the
    // daemon never grants, so form and text/plain posts from browsers stop here.
    if (!/^application\/json\b/i.test(requestHeader(ctx.req, 'content-type') ?? '')) {
      throw new ApiError(415, 'send the body as JSON with Content-Type: application/json', { code: 'unsupported_media_type' });
    }
    const rawBody = await readBody(ctx.req, config.daemon.bodyLimitBytes);
    let parsed: unknown;
    try {
      parsed = JSON.parse(rawBody.toString('utf8'));
    } catch (err) {
      throw new ApiError(400, `the request body is not valid JSON: ${(err as Error).message}`, { code: 'invalid_json' });
    }
    const request = validateChatRequest(parsed);
    const stream = request.stream === true;
    ctx.record.stream = stream;

    const sessionId = requestHeader(ctx.req, 'x-session-id');
    const profileHeader = requestHeader(ctx.req, 'x-profile');
    if (sessionId === undefined) {
      // No profile applies to a stateless request, but a key still may not name one it is not given.
      if (profileHeader !== undefined) requireProfileAllowed(ctx.caller, profileHeader);
      let body = rawBody;
      let sent = request;
      if (request.model === undefined) {
        const model = (await services.upstreamInfo.get())?.id;
        if (model) {
          sent = { ...request, model };
          body = Buffer.from(JSON.stringify(sent));
        }
      }
      await admitted(services, () => proxyChat(services, ctx, { body, request: sent, stream, turn: null }));
      return;
    }

    if (!SESSION_ID_PATTERN.test(sessionId)) {
      throw new ApiError(400, 'X-Session-Id must be 1-128 characters of letters, digits, ".", "_", ":" or "-"', {
        param: 'X-Session-Id',
        code: 'invalid_session_id',
      });
    }
    ctx.record.sessionId = sessionId;
    const { name: profileName, profile } = profileForCaller(config, ctx.caller, profileHeader);
    ctx.record.session = true;
    const { system, newMessages } = splitMessages(request.messages as ChatMessage[]);
    if (newMessages.length === 0) {
      throw new ApiError(400, 'a session turn needs at least one user, assistant or tool message (system messages are not stored)', {
        param: 'messages',
        code: 'invalid_value',
      });
    }

    const turnRequest = {
      tenant: ctx.caller.tenant,
      sessionId,
      profileName,
      profile,
      system,
      newMessages,
      replyTokens: request.max_completion_tokens ?? request.max_tokens,
    };
    await runTurn(services, ctx, turnRequest, async (turn) => {
      const outgoing: ChatRequest = { ...request, messages: turn.messages as ChatRequest['messages'] };
      if (outgoing.model === undefined) {
        const model = (await services.upstreamInfo.get())?.id;
        if (model) outgoing.model = model;
      }
      // Server-side tools only when the client brought none of its own (those pass through untouched).
      if (profile.tools.length > 0 && request.tools === undefined) {
        const maxRounds = profile.maxToolRounds ?? config.daemon.maxToolRounds;
        await admitted(services, () => toolTurn(services, ctx, { turn, outgoing, stream, toolNames: profile.tools, maxRounds }));
        return;
      }
      const hideUsage = stream && !wantsUsage(request);
      if (hideUsage) {
        const options = (request as { stream_options?: unknown }).stream_options;
        (outgoing as Record<string, unknown>).stream_options = {
          ...(typeof options === 'object' && options !== null ? options : {}),
          include_usage: true,
        };
      }
      const body = Buffer.from(JSON.stringify(outgoing));
      await admitted(services, () => proxyChat(services, ctx, { body, request: outgoing, stream, turn, hideUsage }));
    });
  };
}
