import { performance } from 'node:perf_hooks';
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { profileFor } from '../../core/config.js';
import type { ChatMessage } from '../../store/sessions.js';
import { ApiError, sseErrorEvent } from '../api-error.js';
import { readBody } from '../body.js';
import { bodyForUpstream } from '../../compliance/upstream-redaction.js';
import type { RequestContext } from '../routes.js';
import { SESSION_ID_PATTERN } from '../security.js';
import type { DaemonServices } from '../services.js';
import { SessionBusyError } from '../session-lock.js';
import { SseSplitter, TurnAccumulator, replyMessage } from '../sse.js';
import type { UpstreamResponse } from '../upstream.js';
import { collectBody, idleWatch, upstreamFailure, type IdleWatch } from '../upstream.js';
import { ClientGoneError, type Routed } from '../routing/failover.js';
import type { UpstreamMember } from '../routing/upstream-set.js';
import { toolTurn } from '../tools/tool-turn.js';
import { validateChatRequest, type ChatRequest } from '../validate.js';
import { completionReserve, estimateAllTokens, selectWindow } from '../window.js';
import { readUsage, StreamMeter } from '../../metrics/usage.js';

/** Client headers worth passing on to the engine; Authorization and cookies never are. */
const FORWARDED_REQUEST_HEADERS = ['user-agent', 'x-request-id', 'traceparent', 'tracestate'];
/** Upstream reply headers worth passing back. */
const FORWARDED_RESPONSE_HEADERS = ['retry-after', 'x-request-id'];
const DONE = Buffer.from('data: [DONE]\n\n');

function header(ctx: RequestContext, name: string): string | undefined {
  const value = ctx.req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function upstreamHeaders(ctx: RequestContext, body: Buffer): Record<string, string> {
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'content-length': String(body.length),
    accept: header(ctx, 'accept') ?? 'application/json',
  };
  for (const name of FORWARDED_REQUEST_HEADERS) {
    const value = header(ctx, name);
    if (value !== undefined) headers[name] = value;
  }
  return headers;
}

function replyHeaders(upstream: UpstreamResponse, extra: Record<string, string>): Record<string, string> {
  const headers: Record<string, string> = { ...extra };
  for (const name of FORWARDED_RESPONSE_HEADERS) {
    const value = upstream.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  return headers;
}

/** Writes, and waits for the socket to drain when the client reads slower than the engine writes. */
function write(res: ServerResponse, chunk: Buffer): Promise<void> | null {
  if (res.write(chunk)) return null;
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Relays a body's chunks (or what `relay` makes of each) to the client as they arrive, from 'data' events: an async iterator costs a promise
 * and microtask hops per chunk, which on a stream of one-token chunks was a large share of the daemon's CPU.
 * The upstream pauses while the client's socket is full. Rejects with the body's error, or when it closes
 * before it ended (an abort can destroy it without one).
 */
function passThrough(
  body: Readable,
  res: ServerResponse,
  idle: IdleWatch,
  meter: StreamMeter,
  /** What of a chunk to send (null: nothing); the chunk itself when absent. */
  relay?: (chunk: Buffer) => Buffer | null,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let ended = false;
    let corked = false;
    const uncork = () => {
      corked = false;
      res.uncork();
    };
    const resume = () => body.resume();
    const onData = (chunk: Buffer) => {
      idle.refresh();
      meter.push(chunk);
      let out: Buffer | null = chunk;
      if (relay) {
        try {
          out = relay(chunk);
        } catch (err) {
          body.destroy(err as Error);
          return;
        }
      }
      if (out === null) return;
      // undici emits one 'data' per HTTP chunk, several in a row when one socket read held several: they
      // leave in one writev at the end of this tick rather than a syscall each.
      if (!corked) {
        corked = true;
        res.cork();
        process.nextTick(uncork);
      }
      if (!res.write(out)) body.pause();
    };
    const settle = (err: Error | null) => {
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      res.off('drain', resume);
      res.off('close', resume);
      if (err) reject(err);
      else resolve();
    };
    const onEnd = () => {
      ended = true;
      settle(null);
    };
    const onError = (err: Error) => settle(err);
    const onClose = () => {
      if (!ended) settle(new Error('the upstream body closed before it ended'));
    };
    res.on('drain', resume);
    // A client that left never drains; the abort that follows destroys the body.
    res.on('close', resume);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
    body.on('data', onData);
  });
}

interface Turn {
  id: string;
  profile: string;
  ttlMs: number;
  /** The request's own messages to store with the reply (system and developer messages are not stored). */
  newMessages: ChatMessage[];
  /**
   * The daemon asked the engine for the usage event the client did not ask for (a stream's token counts would
   * otherwise be its deltas counted, and engines merge several tokens into one delta): it is not relayed.
   */
  hideUsage: boolean;
}

function wantsUsage(request: ChatRequest): boolean {
  const options = (request as { stream_options?: unknown }).stream_options;
  return typeof options === 'object' && options !== null && (options as { include_usage?: unknown }).include_usage === true;
}

/**
 * POST /v1/chat/completions. Without X-Session-Id: a stateless proxy that forwards the body's bytes as they
 * came. With it: a turn of that session (lock, history window, upstream, store the turn, reply).
 */
export function chatCompletions(services: DaemonServices) {
  const { config } = services;
  return async (ctx: RequestContext): Promise<void> => {
    // JSON only: a page on another site cannot send application/json without a CORS preflight, which the
    // daemon never grants, so form and text/plain posts from browsers stop here.
    if (!/^application\/json\b/i.test(header(ctx, 'content-type') ?? '')) {
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

    const sessionId = header(ctx, 'x-session-id');
    if (sessionId === undefined) {
      let body = rawBody;
      if (request.model === undefined) {
        const model = (await services.upstreamInfo.get())?.id;
        if (model) body = Buffer.from(JSON.stringify({ ...request, model }));
      }
      await admitted(services, () => proxy(services, ctx, body, stream, null, request));
      return;
    }

    if (!SESSION_ID_PATTERN.test(sessionId)) {
      throw new ApiError(400, 'X-Session-Id must be 1-128 characters of letters, digits, ".", "_", ":" or "-"', {
        param: 'X-Session-Id',
        code: 'invalid_session_id',
      });
    }
    const profileName = header(ctx, 'x-profile') ?? config.defaultProfile;
    if (profileName !== config.defaultProfile && !(profileName in config.profiles)) {
      throw new ApiError(
        400,
        `unknown profile "${profileName}"; configured: ${[config.defaultProfile, ...Object.keys(config.profiles)].join(', ')}`,
        {
          param: 'X-Profile',
          code: 'unknown_profile',
        },
      );
    }
    ctx.record.session = true;
    const profile = profileFor(config, profileName);

    let release: () => void;
    try {
      release = await services.locks.acquire(sessionId, config.daemon.sessionWaitMs);
    } catch (err) {
      if (err instanceof SessionBusyError) {
        throw new ApiError(409, `${err.message}; send the next turn after the previous reply, or use another X-Session-Id`, {
          code: 'session_busy',
        });
      }
      throw err;
    }
    try {
      if (ctx.res.destroyed) {
        ctx.record.outcome = 'client_closed';
        return;
      }
      const history = services.store.sessions.loadWindow(sessionId, profile.historyTurns, services.now());
      const system: ChatMessage[] = profile.systemPrompt ? [{ role: 'system', content: profile.systemPrompt }] : [];
      const newMessages: ChatMessage[] = [];
      for (const m of request.messages as ChatMessage[]) {
        if (m.role === 'system' || m.role === 'developer') system.push(m);
        else newMessages.push(m);
      }
      if (newMessages.length === 0) {
        throw new ApiError(400, 'a session turn needs at least one user, assistant or tool message (system messages are not stored)', {
          param: 'messages',
          code: 'invalid_value',
        });
      }
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
                  completionReserve(request.max_completion_tokens ?? request.max_tokens, context) -
                  estimateAllTokens(system) -
                  estimateAllTokens(newMessages),
              );
        window = selectWindow({ history, maxTurns: profile.historyTurns, tokenBudget: budget });
      }
      const outgoing: ChatRequest = { ...request, messages: [...system, ...window, ...newMessages] as ChatRequest['messages'] };
      if (outgoing.model === undefined) {
        const model = (await services.upstreamInfo.get())?.id;
        if (model) outgoing.model = model;
      }
      const hideUsage = stream && !wantsUsage(request);
      if (hideUsage) {
        const options = (request as { stream_options?: unknown }).stream_options;
        (outgoing as Record<string, unknown>).stream_options = {
          ...(typeof options === 'object' && options !== null ? options : {}),
          include_usage: true,
        };
      }
      const turn: Turn = { id: sessionId, profile: profileName, ttlMs: profile.ttlSeconds * 1000, newMessages, hideUsage };
      // Server-side tools only when the client brought none of its own (those pass through untouched).
      if (profile.tools.length > 0 && request.tools === undefined) {
        await admitted(services, () =>
          toolTurn(services, ctx, {
            outgoing,
            stream,
            turn,
            toolNames: profile.tools,
            maxRounds: profile.maxToolRounds ?? config.daemon.maxToolRounds,
            upstreamHeaders: (body) => upstreamHeaders(ctx, body),
            write: (chunk) => write(ctx.res, chunk),
            commit: (produced, reply) => commitTurn(services, ctx, { ...turn, newMessages: [...newMessages, ...produced] }, reply),
          }),
        );
        return;
      }
      await admitted(services, () => proxy(services, ctx, Buffer.from(JSON.stringify(outgoing)), stream, turn, outgoing));
    } finally {
      release();
    }
  };
}

/** Runs `work` within an admission slot: at once when one is free, after a bounded wait, or 429. */
async function admitted(services: DaemonServices, work: () => Promise<void>): Promise<void> {
  const slot = services.admission.acquire();
  const release = typeof slot === 'function' ? slot : await slot;
  try {
    await work();
  } finally {
    release();
  }
}

/** The request's bytes for one upstream: the same bytes unless that upstream renames the model. */
function bodyFor(member: UpstreamMember, body: Buffer, request: ChatRequest): Buffer {
  const model = request.model;
  if (!member.hasModelMap || model === undefined || !(model in member.models)) return body;
  const mapped = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  mapped.model = member.models[model];
  return Buffer.from(JSON.stringify(mapped));
}

async function proxy(
  services: DaemonServices,
  ctx: RequestContext,
  body: Buffer,
  stream: boolean,
  turn: Turn | null,
  request: ChatRequest,
): Promise<void> {
  const { res } = ctx;
  if (res.destroyed) {
    // The client left while this request waited (for its body, its session or the model name).
    ctx.record.outcome = 'client_closed';
    return;
  }
  const controller = new AbortController();
  let clientGone = false;
  const onClose = () => {
    if (!res.writableFinished) {
      clientGone = true;
      controller.abort();
    }
  };
  res.on('close', onClose);
  const timeoutMs = services.config.daemon.upstreamTimeoutMs;
  const sessionHeader: Record<string, string> = turn ? { 'x-session-id': turn.id } : {};
  const upstreamStart = performance.now();
  let upstream: UpstreamResponse;
  let member: UpstreamMember;
  try {
    const routed: Routed = await services.router.send({
      sessionId: turn ? turn.id : null,
      signal: controller.signal,
      build: (m) => {
        const bytes = bodyForUpstream(services.config, m, bodyFor(m, body, request));
        return {
          method: 'POST',
          path: '/v1/chat/completions',
          headers: upstreamHeaders(ctx, bytes),
          body: bytes,
          signal: controller.signal,
        };
      },
    });
    upstream = routed.response;
    member = routed.member;
    ctx.record.upstream = member.name;
  } catch (err) {
    ctx.record.upstreamMs = performance.now() - upstreamStart;
    if (clientGone || err instanceof ClientGoneError) {
      ctx.record.outcome = 'client_closed';
      return;
    }
    ctx.record.outcome = 'upstream_failed';
    const failure = err instanceof ApiError ? err : upstreamFailure(err, services.upstream.url, timeoutMs);
    Object.assign(failure.headers, sessionHeader);
    throw failure;
  }

  const isEventStream = String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream');
  if (stream && upstream.statusCode === 200 && isEventStream) {
    await relayStream(services, ctx, upstream, member, upstreamStart, turn, sessionHeader, () => clientGone, request);
    return;
  }

  // A whole JSON reply (or an upstream error, which is passed through with its status and body).
  let reply: Buffer;
  try {
    reply = await collectBody(upstream.body);
  } catch (err) {
    ctx.record.upstreamMs = performance.now() - upstreamStart;
    if (clientGone) {
      ctx.record.outcome = 'client_closed';
      return;
    }
    ctx.record.outcome = 'upstream_failed';
    services.router.streamFailed(member);
    throw upstreamFailure(err, member.url, timeoutMs);
  }
  const upstreamEnd = performance.now();
  ctx.record.upstreamMs = upstreamEnd - upstreamStart;
  if (upstream.statusCode === 200) readUsage(reply, ctx.record);
  if (clientGone) {
    ctx.record.outcome = 'client_closed';
    return;
  }
  if (upstream.statusCode >= 400) ctx.record.outcome = 'upstream_failed';

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
    commitTurn(services, ctx, turn, message);
  }
  const overhead = performance.now() - ctx.startedAt - ctx.record.upstreamMs;
  const headers = replyHeaders(upstream, sessionHeader);
  headers['content-type'] = String(upstream.headers['content-type'] ?? 'application/json');
  headers['content-length'] = String(reply.length);
  headers['x-cs-llm-overhead-ms'] = overhead.toFixed(3);
  res.writeHead(upstream.statusCode, headers);
  res.end(reply);
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

/** The chunk include_usage adds at the end of a stream: usage and no choices. */
function isUsageOnly(chunk: unknown): boolean {
  if (chunk === null || typeof chunk !== 'object') return false;
  const c = chunk as { usage?: unknown; choices?: unknown };
  return c.usage !== undefined && c.usage !== null && Array.isArray(c.choices) && c.choices.length === 0;
}

/** Stores the turn; the caller sends the final bytes only after this returned. */
function commitTurn(services: DaemonServices, ctx: RequestContext, turn: Turn, reply: ChatMessage): void {
  const messages = [...turn.newMessages, reply];
  try {
    services.store.sessions.appendTurn(turn.id, turn.profile, messages, turn.ttlMs, services.now());
    // Message text is logged only when the operator turned it on (daemon.logContent).
    if (services.config.daemon.logContent) services.log(`session ${turn.id} stored`, messages);
  } catch (err) {
    ctx.record.outcome = 'store_failed';
    services.log('storing a turn failed', (err as Error).message);
    throw new ApiError(500, 'the reply could not be stored in the session database; the turn was not saved, retry it', {
      code: 'store_failed',
      headers: { 'x-session-id': turn.id },
    });
  }
}

async function relayStream(
  services: DaemonServices,
  ctx: RequestContext,
  upstream: UpstreamResponse,
  member: UpstreamMember,
  upstreamStart: number,
  turn: Turn | null,
  sessionHeader: Record<string, string>,
  clientGone: () => boolean,
  request: ChatRequest,
): Promise<void> {
  const { res } = ctx;
  // Overhead up to the headers: the daemon's work before the upstream request (the wait for it excluded).
  const overheadMs = (upstreamStart - ctx.startedAt).toFixed(3);
  res.writeHead(
    200,
    replyHeaders(upstream, {
      ...sessionHeader,
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-cs-llm-overhead-ms': overheadMs,
    }),
  );
  const meter = new StreamMeter(ctx.startedAt);
  res.flushHeaders();
  const timeoutMs = services.config.daemon.upstreamTimeoutMs;
  let failure: ApiError | null = null;
  let sawDone = false;
  const idle = idleWatch(upstream.body, services.config.daemon.streamIdleTimeoutMs);

  if (!turn) {
    // Stateless: bytes pass through as they come, [DONE] included.
    try {
      await passThrough(upstream.body, res, idle, meter);
    } catch (err) {
      if (!clientGone()) failure = upstreamFailure(err, member.url, timeoutMs);
    }
    idle.stop();
    ctx.record.upstreamMs = performance.now() - upstreamStart;
    meter.finish(ctx.record);
  } else {
    const splitter = new SseSplitter();
    const turnSoFar = new TurnAccumulator();
    // The events of one upstream chunk go out in one write.
    const relayEvents = (chunk: Buffer): Buffer | null => {
      const events = splitter.push(chunk);
      let out: Buffer[] | null = null;
      let bytes = 0;
      for (const event of events) {
        if (sawDone) continue;
        if (event.data === '[DONE]') {
          // Held back until the turn is committed.
          sawDone = true;
          continue;
        }
        if (event.data !== null) {
          let parsed: unknown;
          try {
            parsed = JSON.parse(event.data);
          } catch {
            // not JSON: forwarded as it is, nothing to accumulate
          }
          turnSoFar.add(parsed);
          // The usage event the daemon asked for on the client's behalf (the meter has read it from the raw chunk).
          if (turn.hideUsage && isUsageOnly(parsed)) continue;
        }
        (out ??= []).push(event.raw);
        bytes += event.raw.length;
      }
      if (!out) return null;
      return out.length === 1 ? out[0]! : Buffer.concat(out, bytes);
    };
    try {
      await passThrough(upstream.body, res, idle, meter, relayEvents);
    } catch (err) {
      if (!clientGone()) failure = upstreamFailure(err, member.url, timeoutMs);
    }
    idle.stop();
    ctx.record.upstreamMs = performance.now() - upstreamStart;
    meter.finish(ctx.record);
    if (!failure && !clientGone()) {
      if (turnSoFar.error !== null) {
        // The engine reported its own error in the stream, which the client already has; nothing to store.
        ctx.record.outcome = 'upstream_failed';
        res.end();
        return;
      }
      if (!sawDone) {
        failure = new ApiError(502, 'the upstream engine ended the stream before it finished; nothing was stored', {
          code: 'upstream_stream_incomplete',
        });
      } else {
        const message = turnSoFar.message();
        try {
          commitTurn(services, ctx, turn, message);
        } catch (err) {
          res.end(sseErrorEvent(err as ApiError));
          return;
        }
        res.end(DONE);
        if (services.shadow && services.shadow.pick()) {
          services.shadow.mirror(request, typeof message.content === 'string' ? message.content : '', ctx.record.upstreamMs);
        }
        return;
      }
    }
  }
  if (clientGone()) {
    ctx.record.outcome = 'client_closed';
    return;
  }
  if (failure) {
    ctx.record.outcome = 'upstream_failed';
    services.router.streamFailed(member);
    res.end(sseErrorEvent(failure));
    return;
  }
  res.end();
}
