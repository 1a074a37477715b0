/*
 * The engine's side of a response: one chat completion request through the router (failover, masking,
 * accounting as for chat completions), its reply as output items, then the client's reply in the Responses
 * shape: a whole response object, or the semantic events as the engine streams. The turn is stored (when
 * the request stores) before the last byte: before the JSON body, and before response.completed.
 */

import { performance } from 'node:perf_hooks';
import type { ChatMessage } from '../../core/messages.js';
import { StoreUnavailableError } from '../../store/store.js';
import { ApiError, sendJson, storeUnavailable } from '../api-error.js';
import { bodyFor, maxTokensOf, replyHeaders, UpstreamExchange } from '../relay.js';
import type { RequestContext } from '../routes.js';
import type { Routed } from '../routing/failover.js';
import type { DaemonServices } from '../services.js';
import type { SessionTurn } from '../turn.js';
import { itemId, itemsOf, replyRows, type Item } from './items.js';
import type { ResponseSettings } from './request.js';
import { responseObject, type ResponseState } from './response-object.js';
import { ResponseEvents } from './stream-events.js';
import { completionOf, toolRounds, type ServerTools } from './tool-rounds.js';

/** What a response is before its output: everything its object shows but output, status and usage. */
export interface Draft {
  id: string;
  createdAt: number;
  model: string;
  settings: ResponseSettings;
  previousResponseId: string | null;
  conversationId: string | null;
  store: boolean;
  /** The session the turn goes to, and the seq after its input messages (then server-side tool rounds, then output). */
  sessionId: string;
  inputEnd: number;
}

export interface Outcome {
  /** The output as stored messages, one per item. */
  rows: ChatMessage[];
  /** Server-side tool rounds' calls and results, stored before the output. */
  produced: ChatMessage[];
  status: 'completed' | 'incomplete';
  usage: { input: number; output: number } | null;
}

export interface AnswerInput {
  turn: SessionTurn;
  /** The chat completion request for the engine. */
  payload: Record<string, unknown>;
  stream: boolean;
  draft: Draft;
  /** The profile's server-side tools, when they run in this turn. */
  serverTools: ServerTools | null;
  /** Stores the turn with this outcome (nothing when the request does not store); throws the client's error. */
  save: (outcome: Outcome) => Promise<void>;
}

function state(draft: Draft, status: ResponseState['status'], output: Item[], usage: Outcome['usage'], incomplete = false): ResponseState {
  return {
    id: draft.id,
    createdAt: draft.createdAt,
    model: draft.model,
    status,
    output,
    usage,
    previousResponseId: draft.previousResponseId,
    conversationId: draft.conversationId,
    store: draft.store,
    settings: draft.settings,
    incompleteReason: incomplete ? 'max_output_tokens' : null,
  };
}

function usageOf(ctx: RequestContext): Outcome['usage'] {
  const { promptTokens, completionTokens } = ctx.record;
  return promptTokens === undefined && completionTokens === undefined ? null : { input: promptTokens ?? 0, output: completionTokens ?? 0 };
}

export async function answer(services: DaemonServices, ctx: RequestContext, input: AnswerInput): Promise<void> {
  if (ctx.res.destroyed) {
    ctx.record.outcome = 'client_closed';
    return;
  }
  const { draft, payload } = input;
  const exchange = new UpstreamExchange(services, ctx, draft.sessionId, { model: draft.model, sessionStarted: input.turn.starts });
  try {
    if (input.serverTools) {
      const r = await toolRounds(services, ctx, exchange, payload, input.serverTools);
      if (r.kind === 'gone') return;
      if (r.kind === 'engine_error') return engineError(ctx, r.routed, r.body);
      await whole(services, ctx, exchange, r.routed, input, r.message, r.finishReason, r.produced);
      return;
    }
    const bytes = Buffer.from(JSON.stringify(payload));
    const routed = await exchange.send((member) => bodyFor(member, payload, bytes), { body: bytes, maxTokens: maxTokensOf(payload) });
    if (routed === null) return;
    const upstream = routed.response;
    if (input.stream && upstream.statusCode === 200 && String(upstream.headers['content-type'] ?? '').startsWith('text/event-stream')) {
      await streamAnswer(services, ctx, exchange, routed, input);
      return;
    }
    const reply = await exchange.collect(routed);
    if (reply === null || exchange.clientLeft()) return;
    if (upstream.statusCode !== 200) return engineError(ctx, routed, reply);
    const { message, finishReason: finish } = completionOf(reply, ctx);
    await whole(services, ctx, exchange, routed, input, message, finish, []);
  } finally {
    exchange.dispose();
  }
}

/** The engine's own error (a bad tool schema, a prompt too long), passed on with its status. */
function engineError(ctx: RequestContext, routed: Routed, body: Buffer): void {
  ctx.record.outcome = 'upstream_failed';
  ctx.res.writeHead(
    routed.response.statusCode,
    replyHeaders(routed.response, { 'content-type': 'application/json', 'content-length': String(body.length) }),
  );
  ctx.res.end(body);
}

/** A whole reply: the response object, or (a stream asked for, after server-side tool rounds) its events at once. */
async function whole(
  services: DaemonServices,
  ctx: RequestContext,
  exchange: UpstreamExchange,
  routed: Routed,
  input: AnswerInput,
  message: ChatMessage,
  finishReason: unknown,
  produced: ChatMessage[],
): Promise<void> {
  const { draft } = input;
  const outputSeq = draft.inputEnd + produced.length;
  if (input.stream) {
    const events = openStream(ctx, exchange, routed, draft, outputSeq);
    const calls = (message.tool_calls ?? []).map((c, index) => ({ ...(c as object), index }));
    const delta = {
      content: typeof message.content === 'string' ? message.content : '',
      ...(calls.length > 0 ? { tool_calls: calls } : {}),
    };
    const chunk = { choices: [{ index: 0, delta, finish_reason: finishReason ?? 'stop' }] };
    ctx.res.write(events.push(Buffer.from(`data: ${JSON.stringify(chunk)}\n\ndata: [DONE]\n\n`)));
    await completeStream(services, ctx, exchange, input, events, produced);
    return;
  }
  const rows = replyRows(message);
  const output = rows.flatMap((row, i) => itemsOf(row, outputSeq + i, draft.sessionId));
  const incomplete = finishReason === 'length';
  const outcome: Outcome = { rows, produced, status: incomplete ? 'incomplete' : 'completed', usage: usageOf(ctx) };
  await input.save(outcome);
  const overhead = performance.now() - ctx.startedAt - ctx.record.upstreamMs;
  sendJson(ctx.res, 200, responseObject(state(draft, outcome.status, output, outcome.usage, incomplete)), {
    ...replyHeaders(routed.response, {}),
    'x-cs-llm-overhead-ms': overhead.toFixed(3),
  });
  if (services.shadow && services.shadow.pick()) {
    services.shadow.mirror(input.payload, typeof message.content === 'string' ? message.content : '', ctx.record.upstreamMs);
  }
}

/** The event stream's headers and its first two events; the translator of what follows. */
function openStream(ctx: RequestContext, exchange: UpstreamExchange, routed: Routed, draft: Draft, outputSeq: number): ResponseEvents {
  exchange.startEventStream(exchange.firstSentAt - ctx.startedAt, routed.response);
  const events = new ResponseEvents((kind, k) => itemId(kind, outputSeq + k, draft.sessionId));
  const opening = responseObject(state(draft, 'in_progress', [], null));
  ctx.res.write(events.event('response.created', { response: opening }) + events.event('response.in_progress', { response: opening }));
  return events;
}

async function streamAnswer(
  services: DaemonServices,
  ctx: RequestContext,
  exchange: UpstreamExchange,
  routed: Routed,
  input: AnswerInput,
): Promise<void> {
  const { draft } = input;
  const { res } = ctx;
  const events = openStream(ctx, exchange, routed, draft, draft.inputEnd);
  const failure = await exchange.pipe(routed, (chunk) => {
    const out = events.push(chunk);
    return out === '' ? null : Buffer.from(out);
  });
  if (exchange.clientLeft()) return;
  const failed = (code: string, message: string): void => {
    ctx.record.outcome = 'upstream_failed';
    ctx.record.errorCode = code;
    services.router.streamFailed(routed.member);
    const response = { ...responseObject(state(draft, 'failed', events.output, usageOf(ctx))), error: { code, message } };
    res.end(events.event('response.failed', { response }));
  };
  if (failure) return failed(failure.code ?? 'upstream_failed', failure.message);
  if (events.error !== null) {
    const e = events.error as { message?: unknown; code?: unknown };
    return failed(
      typeof e.code === 'string' ? e.code : 'upstream_error',
      typeof e.message === 'string' ? e.message : 'the engine reported an error',
    );
  }
  if (!events.done)
    return failed('upstream_stream_incomplete', 'the upstream engine ended the stream before it finished; nothing was stored');
  await completeStream(services, ctx, exchange, input, events, []);
}

/** The items' done events, the commit, then response.completed (or .incomplete): nothing claims completion before the turn is stored. */
async function completeStream(
  services: DaemonServices,
  ctx: RequestContext,
  exchange: UpstreamExchange,
  input: AnswerInput,
  events: ResponseEvents,
  produced: ChatMessage[],
): Promise<void> {
  const { res } = ctx;
  const closing = events.finish();
  if (closing !== '') {
    const wait = exchange.write(Buffer.from(closing));
    if (wait) await wait;
    if (exchange.clientLeft()) return;
  }
  const incomplete = events.finishReason === 'length';
  const outcome: Outcome = { rows: events.rows(), produced, status: incomplete ? 'incomplete' : 'completed', usage: usageOf(ctx) };
  try {
    await input.save(outcome);
  } catch (err) {
    const e =
      err instanceof ApiError
        ? err
        : err instanceof StoreUnavailableError
          ? storeUnavailable(err)
          : new ApiError(500, 'the response could not be stored', { code: 'store_failed' });
    ctx.record.errorCode = e.code ?? 'store_failed';
    res.end(events.event('error', { code: e.code, message: e.message, param: null }));
    return;
  }
  const final = responseObject(state(input.draft, outcome.status, events.output, outcome.usage, incomplete));
  res.end(events.event(incomplete ? 'response.incomplete' : 'response.completed', { response: final }));
  if (services.shadow && services.shadow.pick()) {
    const text = outcome.rows.find((r) => typeof r.content === 'string')?.content;
    services.shadow.mirror(input.payload, typeof text === 'string' ? text : '', ctx.record.upstreamMs);
  }
}
