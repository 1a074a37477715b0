/*
 * A session turn on a profile with server-side tools: the daemon offers the tools, runs the calls the model
 * makes, feeds the results back and asks again, up to maxRounds rounds of tool calls (after that the model
 * is asked once more without tools, so it must answer). The client sees only the final assistant reply,
 * streamed when it asked: each round streams from the engine; a round's events are held until its first
 * content delta shows it is an answer, tool-call deltas are never relayed. The tool calls and results are
 * stored with the turn, in the same commit, before [DONE].
 */

import { performance } from 'node:perf_hooks';
import type { ChatMessage } from '../../core/messages.js';
import { ApiError, sseErrorEvent } from '../api-error.js';
import { bodyFor, DONE, UpstreamExchange } from '../relay.js';
import type { RequestContext } from '../routes.js';
import type { DaemonServices } from '../services.js';
import { parseCompletion, TurnEvents } from '../sse.js';
import type { SessionTurn } from '../turn.js';
import type { ChatRequest } from '../validate.js';
import type { ToolCallRequest } from './tool-set.js';

export interface ToolTurnInput {
  outgoing: ChatRequest;
  stream: boolean;
  turn: SessionTurn;
  toolNames: readonly string[];
  maxRounds: number;
}

export function callsOf(message: ChatMessage): ToolCallRequest[] {
  const calls = (message.tool_calls ?? []) as Array<{ id?: unknown; function?: { name?: unknown; arguments?: unknown } }>;
  return calls.map((c, i) => ({
    id: typeof c.id === 'string' && c.id !== '' ? c.id : `call_${i}`,
    name: typeof c.function?.name === 'string' ? c.function.name : '',
    arguments: typeof c.function?.arguments === 'string' ? c.function.arguments : '',
  }));
}

type StreamChoice = { delta?: { content?: unknown; tool_calls?: unknown }; finish_reason?: unknown };

export async function toolTurn(services: DaemonServices, ctx: RequestContext, input: ToolTurnInput): Promise<void> {
  const { res } = ctx;
  const { tools } = services;
  const sessionHeader = { 'x-session-id': input.turn.id };
  const exchange = new UpstreamExchange(services, ctx, input.turn.id, {
    model: input.outgoing.model,
    sessionStarted: input.turn.starts,
  });
  const messages: unknown[] = [...input.outgoing.messages];
  const produced: ChatMessage[] = [];
  const definitions = tools.definitions(input.toolNames);
  let headersSent = false;
  const startStream = () => {
    if (headersSent) return;
    headersSent = true;
    exchange.startEventStream(performance.now() - ctx.startedAt - ctx.record.upstreamMs);
    ctx.record.ttftMs = performance.now() - ctx.startedAt;
  };
  const fail = (err: ApiError): void => {
    ctx.record.outcome = 'upstream_failed';
    if (!headersSent) {
      Object.assign(err.headers, sessionHeader);
      throw err;
    }
    ctx.record.errorCode = err.code ?? 'upstream_failed';
    res.end(sseErrorEvent(err));
  };

  try {
    for (let round = 1; ; round++) {
      const offerTools = round <= input.maxRounds;
      const { tool_choice: toolChoice, ...base } = input.outgoing;
      const payload: Record<string, unknown> = { ...base, messages, stream: input.stream };
      if (offerTools) {
        payload.tools = definitions;
        payload.tool_choice = toolChoice ?? 'auto';
      }
      let routed;
      try {
        // The same upstream redaction as the proxy path (store.redactUpstream), tool results included.
        const bytes = Buffer.from(JSON.stringify(payload));
        routed = await exchange.send((member) => bodyFor(member, payload, bytes), {
          body: bytes,
          maxTokens: input.outgoing.max_completion_tokens ?? input.outgoing.max_tokens,
        });
      } catch (err) {
        if (err instanceof ApiError) return fail(err);
        throw err;
      }
      if (routed === null) return;
      const { response, member } = routed;
      const isEventStream = String(response.headers['content-type'] ?? '').startsWith('text/event-stream');

      if (response.statusCode !== 200 || (input.stream && !isEventStream) || !input.stream) {
        // A whole JSON body: the non-streaming round, or an engine error.
        let reply: Buffer | null;
        try {
          reply = await exchange.collect(routed);
        } catch (err) {
          if (err instanceof ApiError) return fail(err);
          throw err;
        }
        if (reply === null) return;
        if (response.statusCode !== 200) {
          ctx.record.outcome = 'upstream_failed';
          if (headersSent) {
            return fail(
              new ApiError(502, `the upstream engine answered ${response.statusCode} in a later tool round; nothing was stored`, {
                code: 'upstream_failed',
              }),
            );
          }
          const retryAfter = response.headers['retry-after'];
          res.writeHead(response.statusCode, {
            ...sessionHeader,
            ...(typeof retryAfter === 'string' ? { 'retry-after': retryAfter } : {}),
            'content-type': String(response.headers['content-type'] ?? 'application/json'),
            'content-length': String(reply.length),
          });
          res.end(reply);
          return;
        }
        const message = parseCompletion(reply)?.message;
        if (!message)
          return fail(
            new ApiError(502, 'the upstream engine answered without a chat completion message; nothing was stored', {
              code: 'upstream_bad_reply',
            }),
          );
        if (offerTools && message.tool_calls && message.tool_calls.length > 0) {
          await runCalls(services, ctx, input, exchange.signal, message, messages, produced);
          continue;
        }
        await input.turn.commit(message, produced);
        const headers: Record<string, string> = {
          ...sessionHeader,
          'content-type': 'application/json',
          'content-length': String(reply.length),
        };
        headers['x-cs-llm-overhead-ms'] = (performance.now() - ctx.startedAt - ctx.record.upstreamMs).toFixed(3);
        res.writeHead(200, headers);
        res.end(reply);
        return;
      }

      // A streamed round: events are held until the first content delta shows this round is the answer.
      let held: Buffer[] = [];
      let answering = false;
      const events = new TurnEvents((parsed, raw) => {
        const p = parsed as { error?: unknown; choices?: StreamChoice[] } | null | undefined;
        const choice = p?.choices?.[0];
        if (choice?.delta?.tool_calls !== undefined || choice?.finish_reason === 'tool_calls') return null;
        if (answering) return raw;
        const content = choice?.delta?.content;
        if ((typeof content === 'string' && content !== '') || p?.error !== undefined) {
          answering = true;
          const out = held.length > 0 ? Buffer.concat([...held, raw]) : raw;
          held = [];
          return out;
        }
        held.push(raw);
        return null;
      });
      const broken = await exchange.pipe(routed, (chunk) => {
        const out = events.push(chunk);
        if (out !== null) startStream();
        return out;
      });
      if (exchange.clientLeft()) return;
      if (broken !== null || !events.done) {
        services.router.streamFailed(member);
        return fail(
          broken ??
            new ApiError(502, 'the upstream engine ended the stream before it finished; nothing was stored', {
              code: 'upstream_stream_incomplete',
            }),
        );
      }
      if (events.turn.error !== null) {
        // The engine's own error, relayed (it went out with the events); nothing stored.
        ctx.record.outcome = 'upstream_failed';
        startStream();
        if (held.length > 0) res.write(Buffer.concat(held));
        res.end();
        return;
      }
      const message = events.turn.message();
      if (offerTools && message.tool_calls && message.tool_calls.length > 0) {
        await runCalls(services, ctx, input, exchange.signal, message, messages, produced);
        continue;
      }
      startStream();
      if (held.length > 0) {
        const wait = exchange.write(Buffer.concat(held));
        if (wait) await wait;
        if (exchange.clientLeft()) return;
      }
      try {
        await input.turn.commit(message, produced);
      } catch (err) {
        res.end(sseErrorEvent(err as ApiError));
        return;
      }
      res.end(DONE);
      return;
    }
  } finally {
    exchange.dispose();
  }
}

/** Runs a round's tool calls (in parallel) and appends the assistant message and the results. */
async function runCalls(
  services: DaemonServices,
  ctx: RequestContext,
  input: ToolTurnInput,
  signal: AbortSignal,
  message: ChatMessage,
  messages: unknown[],
  produced: ChatMessage[],
): Promise<void> {
  const calls = callsOf(message);
  const assistant: ChatMessage = {
    ...message,
    tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
  };
  const started = performance.now();
  const results = await Promise.all(calls.map((c) => services.tools.run(c, { allowed: input.toolNames, signal })));
  // Waiting on tools is time spent outside the daemon, like waiting on the engine.
  ctx.record.upstreamMs += performance.now() - started;
  const toolMessages: ChatMessage[] = calls.map((c, i) => ({ role: 'tool', tool_call_id: c.id, content: results[i]!.content }));
  messages.push(assistant, ...toolMessages);
  produced.push(assistant, ...toolMessages);
}
