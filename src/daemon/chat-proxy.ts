// A chat completion request to the upstream and its reply to the client, in the chat completions shape:
// stateless (the bytes pass through), or a session turn's reply (a whole JSON body, or a stream relayed event
// by event while the assistant message is rebuilt), committed before the reply's last byte.
import { performance } from 'node:perf_hooks';
import { StreamMeter } from '../metrics/usage.js';
import type { ChatMessage } from '../core/messages.js';
import { ApiError, sseErrorEvent } from './api-error.js';
import type { RequestContext } from './routes.js';
import type { Routed } from './routing/failover.js';
import type { DaemonServices } from './services.js';
import { replyMessage, TurnEvents } from './sse.js';
import { bodyFor, DONE, replyHeaders, UpstreamExchange } from './relay.js';
import type { SessionTurn } from './turn.js';
import type { ChatRequest } from './validate.js';

export interface ChatProxyInput {
  /** The request's bytes as they go upstream (the client's own on a stateless request). */
  body: Buffer;
  /** What `body` holds (its model decides the upstream's model mapping; the shadow request copies it). */
  request: ChatRequest;
  stream: boolean;
  /** Null: stateless, nothing stored. */
  turn: SessionTurn | null;
  /**
   * The daemon asked the engine for the usage event the client did not ask for (a stream's token counts would
   * otherwise be its deltas counted, and engines merge several tokens into one delta): it is not relayed.
   */
  hideUsage?: boolean;
}

/** The chunk include_usage adds at the end of a stream: usage and no choices. */
function isUsageOnly(chunk: unknown): boolean {
  if (chunk === null || typeof chunk !== 'object') return false;
  const c = chunk as { usage?: unknown; choices?: unknown };
  return c.usage !== undefined && c.usage !== null && Array.isArray(c.choices) && c.choices.length === 0;
}

export async function proxyChat(services: DaemonServices, ctx: RequestContext, input: ChatProxyInput): Promise<void> {
  if (ctx.res.destroyed) {
    // The client left while this request waited (for its body, its session or the model name).
    ctx.record.outcome = 'client_closed';
    return;
  }
  const { body, request, turn } = input;
  const exchange = new UpstreamExchange(services, ctx, turn ? turn.id : null, {
    model: request.model,
    sessionStarted: turn !== null && turn.starts,
  });
  const routed = await exchange.send((member) => bodyFor(member, request, body), {
    body,
    maxTokens: request.max_completion_tokens ?? request.max_tokens,
  });
  if (routed === null) return;
  const upstream = routed.response;
  const isEventStream = String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream');
  if (input.stream && upstream.statusCode === 200 && isEventStream) {
    await relayStream(services, ctx, exchange, routed, input);
    return;
  }

  // A whole JSON reply (or an upstream error, which is passed through with its status and body).
  const reply = await exchange.collect(routed);
  if (reply === null) return;
  if (exchange.clientLeft()) return;
  if (upstream.statusCode >= 400) ctx.record.outcome = 'upstream_failed';
  const sessionHeader: Record<string, string> = turn ? { 'x-session-id': turn.id } : {};

  if (turn && upstream.statusCode === 200) {
    let message: ChatMessage | null = null;
    try {
      message = replyMessage(JSON.parse(reply.toString('utf8')));
    } catch {
      message = null;
    }
    if (!message) {
      ctx.record.outcome = 'upstream_failed';
      throw new ApiError(502, 'the upstream engine answered without a chat completion message; nothing was stored', {
        code: 'upstream_bad_reply',
        headers: sessionHeader,
      });
    }
    await turn.commit(message);
  }
  const overhead = performance.now() - ctx.startedAt - ctx.record.upstreamMs;
  const headers = replyHeaders(upstream, sessionHeader);
  headers['content-type'] = String(upstream.headers['content-type'] ?? 'application/json');
  headers['content-length'] = String(reply.length);
  headers['x-cs-llm-overhead-ms'] = overhead.toFixed(3);
  ctx.res.writeHead(upstream.statusCode, headers);
  ctx.res.end(reply);
  if (services.shadow && upstream.statusCode === 200 && services.shadow.pick()) {
    // After the reply went out: parsing it here costs the client nothing.
    try {
      const text = replyMessage(JSON.parse(reply.toString('utf8')))?.content;
      services.shadow.mirror(request, typeof text === 'string' ? text : '', ctx.record.upstreamMs);
    } catch {
      // not JSON: nothing to compare
    }
  }
}

async function relayStream(
  services: DaemonServices,
  ctx: RequestContext,
  exchange: UpstreamExchange,
  routed: Routed,
  input: ChatProxyInput,
): Promise<void> {
  const { res } = ctx;
  const { turn } = input;
  // Overhead up to the headers: the daemon's work before the upstream request (the wait for it excluded).
  exchange.startEventStream(exchange.firstSentAt - ctx.startedAt, routed.response);
  const meter = new StreamMeter(ctx.startedAt);

  if (!turn) {
    // Stateless: bytes pass through as they come, [DONE] included.
    const failure = await exchange.pipe(routed, undefined, meter);
    if (exchange.clientLeft()) return;
    if (failure) exchange.failStream(routed.member, failure);
    else res.end();
    return;
  }

  const hideUsage = input.hideUsage === true;
  const events = new TurnEvents(
    hideUsage
      ? // The usage event the daemon asked for on the client's behalf (the meter has read it from the raw chunk).
        (parsed, raw) => (isUsageOnly(parsed) ? null : raw)
      : undefined,
  );
  let failure = await exchange.pipe(routed, (chunk) => events.push(chunk), meter);
  if (exchange.clientLeft()) return;
  if (!failure) {
    if (events.turn.error !== null) {
      // The engine reported its own error in the stream, which the client already has; nothing to store.
      ctx.record.outcome = 'upstream_failed';
      res.end();
      return;
    }
    if (events.done) {
      const message = events.turn.message();
      try {
        await turn.commit(message);
      } catch (err) {
        res.end(sseErrorEvent(err as ApiError));
        return;
      }
      res.end(DONE);
      if (services.shadow && services.shadow.pick()) {
        services.shadow.mirror(input.request, typeof message.content === 'string' ? message.content : '', ctx.record.upstreamMs);
      }
      return;
    }
    failure = new ApiError(502, 'the upstream engine ended the stream before it finished; nothing was stored', {
      code: 'upstream_stream_incomplete',
    });
  }
  exchange.failStream(routed.member, failure);
}
