// The upstream side of one client request, for every front door (chat completions, tool turns, later the
// Responses API): send through the router, read a whole reply, or relay a stream to the client as it comes
// with backpressure, and account the time spent on the upstream. Whatever asks for it decides what the
// client sees around it (headers, the commit before the last byte).
import { DEFAULT_TENANT } from '../core/tenant.js';
import { performance } from 'node:perf_hooks';
import type { IncomingMessage } from 'node:http';
import type { Masker } from '../compliance/masking.js';
import { bodyForUpstream, maskerFor } from '../compliance/upstream-redaction.js';
import { readUsage, StreamMeter, type TokenFields } from '../metrics/usage.js';
import { ApiError, sseErrorEvent } from './api-error.js';
import type { RequestContext } from './routes.js';
import { ClientAbort } from './client-abort.js';
import { MaskedStream } from './masked-stream.js';
import { ClientGoneError, type Routed } from './routing/failover.js';
import type { UpstreamMember } from './routing/upstream-set.js';
import type { DaemonServices } from './services.js';
import { passThrough } from './pass-through.js';
import { SseEventTooLongError } from './sse.js';
import { estimateTokensOfBytes } from './token-estimate.js';
import { collectBody, idleWatch, upstreamFailure, UpstreamReplyTooLargeError, type UpstreamResponse } from './upstream.js';

/** How long an event stream's headers may wait for its first event to go out with (startEventStream). */
const HEADERS_FLUSH_MS = 10;

/** The end of an OpenAI stream; on a session turn it goes out only after the commit. */
export const DONE = Buffer.from('data: [DONE]\n\n');

/** Client headers worth passing on to the engine; Authorization and cookies never are. */
const FORWARDED_REQUEST_HEADERS = ['user-agent', 'x-request-id', 'traceparent', 'tracestate'];
/** Upstream reply headers worth passing back. */
const FORWARDED_RESPONSE_HEADERS = ['retry-after', 'x-request-id'];

export function requestHeader(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

export function upstreamHeaders(req: IncomingMessage, body: Buffer): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(body.length),
    accept: requestHeader(req, 'accept') ?? 'application/json',
  };
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = requestHeader(req, name);
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

export function replyHeaders(upstream: UpstreamResponse, extra: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = { ...extra };
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = upstream.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return headers;
}

/**
 * The request's bytes for one upstream: `bytes` (the payload already serialised) unless that upstream renames
 * the model. Own properties only: a model named "toString" is not a mapping.
 */
export function bodyFor(member: UpstreamMember, payload: { model?: unknown }, bytes?: Buffer): Buffer {
  const model = payload.model;
  if (member.hasModelMap && typeof model === 'string' && Object.hasOwn(member.models, model)) {
    return Buffer.from(JSON.stringify({ ...payload, model: member.models[model] }));
  }
  return bytes ?? Buffer.from(JSON.stringify(payload));
}

/** The reply length a chat completion payload asks for (max_completion_tokens or max_tokens), for token estimates. */
export function maxTokensOf(payload: Record<string, unknown>): number | null {
  const n = payload.max_completion_tokens ?? payload.max_tokens;
  return typeof n === 'number' ? n : null;
}

/** What a request's upstream replies are accounted under (docs/cost-and-capacity.md). */
export interface ExchangeUsage {
  /** The model name the client asked for. */
  model: string | undefined;
  /** The turn starts a session (counted once, with the first reply). */
  sessionStarted: boolean;
}

const NO_SESSION: ExchangeUsage = { model: undefined, sessionStarted: false };

/**
 * One client request's traffic with the upstreams (one or several rounds, as a tool turn makes). A client that
 * goes away aborts the upstream request in flight. Time between sending and the end of each reply is added to
 * the request's upstreamMs, so the daemon's overhead is what remains.
 */
export class UpstreamExchange {
  private readonly abort = new ClientAbort();
  private gone = false;
  private stalled = false;
  private mark = 0;
  /** performance.now() when the first upstream request went out (-1 before). */
  firstSentAt = -1;
  /** The placeholders of this request's values, once a masked upstream was asked (every round shares them). */
  private masker: Masker | null = null;
  /** The body last sent, for estimating its prompt tokens when the engine reports none. */
  private lastBody: Buffer | null = null;
  private sessionCounted = false;

  constructor(
    private readonly services: DaemonServices,
    private readonly ctx: RequestContext,
    /** The session the request belongs to (sticky routing, and the X-Session-Id on errors); null when stateless. */
    private readonly sessionId: string | null,
    private readonly usage: ExchangeUsage = NO_SESSION,
  ) {
    ctx.res.on('close', this.onClose);
  }

  private readonly onClose = (): void => {
    if (!this.ctx.res.writableFinished) {
      this.gone = true;
      this.abort.abort();
    }
  };

  /** For tool calls: an AbortSignal, made on first use (see ClientAbort). */
  get signal(): AbortSignal {
    return this.abort.signal;
  }

  /** Whether the client went away (or was cut) before its reply was complete; if so the request's outcome says so. */
  clientLeft(): boolean {
    if (!this.gone) return false;
    this.ctx.record.outcome = this.stalled ? 'client_stalled' : 'client_closed';
    return true;
  }

  /** The client left its socket full for daemon.clientStallTimeoutMs: cut it (the upstream request is aborted). */
  private readonly stall = (): void => {
    this.stalled = true;
    this.ctx.res.destroy();
  };

  /**
   * Writes; when the client's socket is full, the promise resolves once it drained, or once the client is gone
   * (cut after daemon.clientStallTimeoutMs). Check clientLeft() after waiting.
   */
  write(chunk: Buffer): Promise<void> | null {
    const { res } = this.ctx;
    if (res.write(chunk)) return null;
    return new Promise((resolve) => {
      const timer = setTimeout(this.stall, this.services.config.daemon.clientStallTimeoutMs);
      const done = () => {
        clearTimeout(timer);
        res.off('drain', done);
        res.off('close', done);
        resolve();
      };
      res.on('drain', done);
      res.on('close', done);
    });
  }

  /** Stops watching the client (the exchange is over). */
  dispose(): void {
    this.ctx.res.off('close', this.onClose);
  }

  private account(): void {
    const now = performance.now();
    this.ctx.record.upstreamMs += now - this.mark;
    this.mark = now;
  }

  /**
   * One answered round's tokens: added to the request's record (a tool turn's rounds are summed) and to the
   * usage accounting, and they replace the estimate in the upstream's rate-limit window. A stream whose engine
   * sent no usage has its prompt estimated from the bytes sent.
   */
  private settle(routed: Routed, t: TokenFields): void {
    const { member } = routed;
    const record = this.ctx.record;
    if (t.promptTokens !== undefined) record.promptTokens = (record.promptTokens ?? 0) + t.promptTokens;
    if (t.completionTokens !== undefined) record.completionTokens = (record.completionTokens ?? 0) + t.completionTokens;
    if (t.promptTokens === undefined && t.completionTokens === undefined) return;
    const sessionStarted = this.usage.sessionStarted && !this.sessionCounted;
    this.sessionCounted = true;
    const tokens = {
      prompt: t.promptTokens ?? estimateTokensOfBytes(this.lastBody),
      cached: t.cachedTokens ?? 0,
      completion: t.completionTokens ?? 0,
    };
    if (routed.budget) member.budget?.settle(routed.budget, tokens.prompt + tokens.completion, tokens.completion);
    // The caller's tenant (its key's): its usage, cost and tokensPerDay quota.
    const tenant = record.callerTenant ?? DEFAULT_TENANT;
    this.services.quotas.addTokens(tenant, tokens.prompt + tokens.completion, Date.now());
    this.services.accounting.record({
      upstream: member,
      model: this.usage.model ?? '',
      tenant,
      keyId: record.keyId ?? '',
      sessionStarted,
      tokens,
    });
  }

  /**
   * Sends a chat completion request through the router (failover before the first byte); `bytes` builds the
   * body for the upstream it picked; `size` (the body as the client's request makes it, and its max_tokens)
   * is what rate-limit budgets and cheapest routing estimate its tokens from. Null when the client went away;
   * otherwise failures are thrown as the ApiError the client should get.
   */
  async send(
    bytes: (member: UpstreamMember) => Buffer,
    size?: { body: Buffer; maxTokens: number | null | undefined },
  ): Promise<Routed | null> {
    const { services, ctx } = this;
    this.mark = performance.now();
    if (this.firstSentAt < 0) this.firstSentAt = this.mark;
    const abort = this.abort;
    try {
      const routed = await services.router.send({
        sessionId: this.sessionId,
        abort,
        ...(size ? { estimate: () => ({ prompt: estimateTokensOfBytes(size.body), completion: size.maxTokens ?? null }) } : {}),
        build: (member) => {
          const masker = member.mask ? (this.masker ??= maskerFor(services.config)) : undefined;
          const body = bodyForUpstream(services.config, member, bytes(member), masker);
          this.lastBody = body;
          return { method: 'POST', path: '/v1/chat/completions', headers: upstreamHeaders(ctx.req, body), body, signal: abort };
        },
      });
      ctx.record.upstream = routed.member.name;
      return routed;
    } catch (err) {
      this.account();
      if (this.gone || err instanceof ClientGoneError) {
        ctx.record.outcome = 'client_closed';
        return null;
      }
      ctx.record.outcome = 'upstream_failed';
      const failure = err instanceof ApiError ? err : upstreamFailure(err, services.upstream.url, services.config.daemon.upstreamTimeoutMs);
      if (this.sessionId !== null) failure.headers['x-session-id'] = this.sessionId;
      throw failure;
    }
  }

  /**
   * The whole reply body. Null when it broke off because the client went away; a body that broke for any other
   * reason counts against the upstream and is thrown as the client's error.
   */
  async collect(routed: Routed): Promise<Buffer | null> {
    try {
      const reply = await collectBody(routed.response.body, this.services.config.daemon.upstreamReplyLimitBytes);
      this.account();
      if (routed.response.statusCode === 200) {
        const tokens: TokenFields = {};
        readUsage(reply, tokens);
        this.settle(routed, tokens);
      }
      return this.restore(routed, reply);
    } catch (err) {
      this.account();
      if (this.clientLeft()) return null;
      this.ctx.record.outcome = 'upstream_failed';
      this.services.router.streamFailed(routed.member);
      throw upstreamFailure(err, routed.member.url, this.services.config.daemon.upstreamTimeoutMs);
    }
  }

  /** A masked upstream's whole reply with its placeholders put back (its JSON strings, or the text when not JSON). */
  private restore(routed: Routed, reply: Buffer): Buffer {
    const masker = this.masker;
    if (!routed.member.mask || masker === null || masker.size === 0) return reply;
    const text = reply.toString('utf8');
    try {
      return Buffer.from(JSON.stringify(masker.restoreRecord(JSON.parse(text) as unknown)));
    } catch {
      return Buffer.from(masker.restore(text));
    }
  }

  /** Sends the headers of an event stream (200); `upstream`'s Retry-After and X-Request-Id go back with them. */
  startEventStream(overheadMs: number, upstream?: UpstreamResponse): void {
    const headers: Record<string, string> = {
      ...(this.sessionId !== null ? { 'x-session-id': this.sessionId } : {}),
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-cs-llm-overhead-ms': overheadMs.toFixed(3),
    };
    const { res } = this.ctx;
    res.writeHead(200, upstream ? replyHeaders(upstream, headers) : headers);
    // The headers leave with the first event, in its write: a write of their own per stream was a tenth of the
    // daemon's CPU on short streams (profiled, #21). An engine slower than HEADERS_FLUSH_MS to its first event
    // (prefill, a tool round) still gets the client its headers then.
    const written = res.socket?.bytesWritten ?? 0;
    setTimeout(() => {
      if (!res.writableEnded && !res.destroyed && (res.socket?.bytesWritten ?? 0) === written) res.flushHeaders();
    }, HEADERS_FLUSH_MS).unref();
  }

  /**
   * Relays a streamed reply to the client as it arrives (`transform` picks what of each chunk goes out) until
   * it ends. Resolves with null when it ended, or with the failure to report (the upstream broke off or went
   * silent for daemon.streamIdleTimeoutMs while the client was reading); a client that went away, or was cut
   * for leaving its socket full longer than daemon.clientStallTimeoutMs, is no failure (see clientLeft()).
   * With `meter`, the client's time to first token goes in the request's record.
   */
  async pipe(routed: Routed, transform?: (chunk: Buffer) => Buffer | null, meter?: StreamMeter): Promise<ApiError | null> {
    const { services, ctx } = this;
    const body = routed.response.body;
    const tokenMeter = meter ?? new StreamMeter(ctx.startedAt);
    const idle = idleWatch(body, services.config.daemon.streamIdleTimeoutMs);
    // A transform rebuilds the reply to store or translate it, so what it reads is held in memory: bounded
    // like a whole reply. A plain relay (no transform) holds nothing and may run as long as the engine does.
    const accumulates = transform !== undefined;
    if (routed.member.mask && this.masker !== null && this.masker.size > 0) {
      // Placeholders restored before anything else reads the events (the turn's accumulator stores values).
      const masked = new MaskedStream(this.masker);
      const then = transform;
      transform = (chunk) => {
        const restored = masked.push(chunk);
        return restored === null || !then ? restored : then(restored);
      };
    }
    if (accumulates) {
      const limit = services.config.daemon.upstreamReplyLimitBytes;
      const read = transform!;
      let received = 0;
      transform = (chunk) => {
        received += chunk.length;
        if (received > limit) throw new UpstreamReplyTooLargeError(limit);
        return read(chunk);
      };
    }
    let failure: ApiError | null = null;
    try {
      await passThrough(body, ctx.res, {
        idle,
        meter: tokenMeter,
        transform,
        stallMs: services.config.daemon.clientStallTimeoutMs,
        onStall: this.stall,
      });
    } catch (err) {
      if (this.gone) {
        // the client's leaving is no failure
      } else if (err instanceof SseEventTooLongError) {
        failure = new ApiError(
          502,
          `the upstream engine at ${routed.member.url} sent an event over 1 MiB; the stream was ended and nothing was stored`,
          {
            code: 'upstream_bad_reply',
          },
        );
      } else failure = upstreamFailure(err, routed.member.url, services.config.daemon.upstreamTimeoutMs);
    }
    idle.stop();
    this.account();
    const tokens: TokenFields = {};
    tokenMeter.finish(tokens);
    if (meter && tokens.ttftMs !== undefined) ctx.record.ttftMs = tokens.ttftMs;
    // Tokens the engine generated cost the same whether or not the stream got to its end.
    this.settle(routed, tokens);
    return failure;
  }

  /** A stream that broke after its headers went out: an error event and no [DONE]; it counts against the upstream. */
  failStream(member: UpstreamMember, failure: ApiError): void {
    this.ctx.record.outcome = 'upstream_failed';
    this.services.router.streamFailed(member);
    this.ctx.res.end(sseErrorEvent(failure));
  }
}
