import { performance } from 'node:perf_hooks';
import { bodyForUpstream } from '../../compliance/upstream-redaction.js';
import type { ChatMessage } from '../../store/sessions.js';
import { ApiError, sseErrorEvent } from '../api-error.js';
import type { RequestContext } from '../routes.js';
import { ClientGoneError, type Routed } from '../routing/failover.js';
import type { UpstreamMember } from '../routing/upstream-set.js';
import type { DaemonServices } from '../services.js';
import { SseSplitter, TurnAccumulator, replyMessage } from '../sse.js';
import { collectBody, idleWatch, upstreamFailure } from '../upstream.js';
import type { ChatRequest } from '../validate.js';
import type { ToolCallRequest } from './tool-set.js';

/**
 * A session turn on a profile with server-side tools: the daemon offers the tools, runs the calls the model
 * makes, feeds the results back and asks again, up to maxRounds rounds of tool calls (after that the model
 * is asked once more without tools, so it must answer). The client sees only the final assistant reply,
 * streamed when it asked: each round streams from the engine; a round's events are held until its first
 * content delta shows it is an answer, tool-call deltas are never relayed. The tool calls and results are
 * stored with the turn, in the same commit, before [DONE].
 */
export interface ToolTurnInput {
  outgoing: ChatRequest;
  stream: boolean;
  turn: { id: string; profile: string; ttlMs: number; newMessages: ChatMessage[] };
  toolNames: readonly string[];
  maxRounds: number;
  /** From chat-completions: headers for the upstream request, socket writes, the turn's commit. */
  upstreamHeaders: (body: Buffer) => Record<string, string>;
  write: (chunk: Buffer) => Promise<void> | null;
  commit: (messages: ChatMessage[], reply: ChatMessage) => void;
}

const DONE = Buffer.from('data: [DONE]\n\n');

function bodyFor(member: UpstreamMember, payload: Record<string, unknown>): Buffer {
  const model = payload.model;
  if (member.hasModelMap && typeof model === 'string' && model in member.models) {
    return Buffer.from(JSON.stringify({ ...payload, model: member.models[model] }));
  }
  return Buffer.from(JSON.stringify(payload));
}

function callsOf(message: ChatMessage): ToolCallRequest[] {
  const calls = (message.tool_calls ?? []) as Array<{ id?: unknown; function?: { name?: unknown; arguments?: unknown } }>;
  return calls.map((c, i) => ({
    id: typeof c.id === 'string' && c.id !== '' ? c.id : `call_${i}`,
    name: typeof c.function?.name === 'string' ? c.function.name : '',
    arguments: typeof c.function?.arguments === 'string' ? c.function.arguments : '',
  }));
}

export async function toolTurn(services: DaemonServices, ctx: RequestContext, input: ToolTurnInput): Promise<void> {
  const { res } = ctx;
  const { router, tools } = services;
  const sessionHeader = { 'x-session-id': input.turn.id };
  const controller = new AbortController();
  const onClose = () => {
    if (!res.writableFinished) controller.abort();
  };
  res.on('close', onClose);
  const messages: unknown[] = [...input.outgoing.messages];
  const produced: ChatMessage[] = [];
  const definitions = tools.definitions(input.toolNames);
  let headersSent = false;
  const startStream = () => {
    if (headersSent) return;
    headersSent = true;
    const overhead = (performance.now() - ctx.startedAt - ctx.record.upstreamMs).toFixed(3);
    res.writeHead(200, {
      ...sessionHeader,
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      'x-cs-llm-overhead-ms': overhead,
    });
    res.flushHeaders();
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
      const started = performance.now();
      let routed: Routed;
      try {
        routed = await router.send({
          sessionId: input.turn.id,
          signal: controller.signal,
          build: (member) => {
            // The same upstream redaction as the proxy path (store.redactUpstream), tool results included.
            const body = bodyForUpstream(services.config, member, bodyFor(member, payload));
            return { method: 'POST', path: '/v1/chat/completions', headers: input.upstreamHeaders(body), body, signal: controller.signal };
          },
        });
      } catch (err) {
        ctx.record.upstreamMs += performance.now() - started;
        if (err instanceof ClientGoneError) {
          ctx.record.outcome = 'client_closed';
          return;
        }
        if (err instanceof ApiError) return fail(err);
        throw err;
      }
      const { response, member } = routed;
      const isEventStream = String(response.headers['content-type'] ?? '').startsWith('text/event-stream');

      if (response.statusCode !== 200 || (input.stream && !isEventStream) || !input.stream) {
        // A whole JSON body: the non-streaming round, or an engine error.
        let reply: Buffer;
        try {
          reply = await collectBody(response.body);
        } catch (err) {
          ctx.record.upstreamMs += performance.now() - started;
          if (controller.signal.aborted) {
            ctx.record.outcome = 'client_closed';
            return;
          }
          router.streamFailed(member);
          return fail(upstreamFailure(err, member.url, services.config.daemon.upstreamTimeoutMs));
        }
        ctx.record.upstreamMs += performance.now() - started;
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
        let completion: unknown = null;
        try {
          completion = JSON.parse(reply.toString('utf8'));
        } catch {
          completion = null;
        }
        const message = replyMessage(completion);
        if (!message)
          return fail(
            new ApiError(502, 'the upstream engine answered without a chat completion message; nothing was stored', {
              code: 'upstream_bad_reply',
            }),
          );
        if (offerTools && message.tool_calls && message.tool_calls.length > 0) {
          await runCalls(services, ctx, input, controller.signal, message, messages, produced);
          continue;
        }
        input.commit(produced, message);
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

      // A streamed round.
      const splitter = new SseSplitter();
      const acc = new TurnAccumulator();
      let held: Buffer[] = [];
      let answering = false;
      let sawDone = false;
      let broken: unknown = null;
      const idle = idleWatch(response.body, services.config.daemon.streamIdleTimeoutMs);
      try {
        for await (const chunk of response.body as AsyncIterable<Buffer>) {
          idle.refresh();
          let out: Buffer[] | null = null;
          for (const event of splitter.push(chunk)) {
            if (sawDone) continue;
            if (event.data === '[DONE]') {
              sawDone = true;
              continue;
            }
            let parsed: {
              error?: unknown;
              choices?: Array<{ delta?: { content?: unknown; tool_calls?: unknown }; finish_reason?: unknown }>;
            } | null = null;
            if (event.data !== null) {
              try {
                parsed = JSON.parse(event.data);
              } catch {
                parsed = null;
              }
              acc.add(parsed);
            }
            const choice = parsed?.choices?.[0];
            if (choice?.delta?.tool_calls !== undefined || choice?.finish_reason === 'tool_calls') continue;
            if (!answering) {
              const content = choice?.delta?.content;
              if ((typeof content === 'string' && content !== '') || parsed?.error !== undefined) {
                answering = true;
                out = held;
                held = [];
              } else {
                held.push(event.raw);
                continue;
              }
            }
            (out ??= []).push(event.raw);
          }
          if (out && out.length > 0) {
            startStream();
            const wait = input.write(out.length === 1 ? out[0]! : Buffer.concat(out));
            if (wait) await wait;
          }
        }
      } catch (err) {
        broken = err;
      }
      idle.stop();
      ctx.record.upstreamMs += performance.now() - started;
      if (controller.signal.aborted) {
        ctx.record.outcome = 'client_closed';
        return;
      }
      if (broken !== null || !sawDone) {
        router.streamFailed(member);
        return fail(
          broken !== null
            ? upstreamFailure(broken, member.url, services.config.daemon.upstreamTimeoutMs)
            : new ApiError(502, 'the upstream engine ended the stream before it finished; nothing was stored', {
                code: 'upstream_stream_incomplete',
              }),
        );
      }
      if (acc.error !== null) {
        // The engine's own error, relayed (it went out with the events); nothing stored.
        ctx.record.outcome = 'upstream_failed';
        startStream();
        if (held.length > 0) res.write(Buffer.concat(held));
        res.end();
        return;
      }
      const message = acc.message();
      if (offerTools && message.tool_calls && message.tool_calls.length > 0) {
        await runCalls(services, ctx, input, controller.signal, message, messages, produced);
        continue;
      }
      startStream();
      if (held.length > 0) {
        const wait = input.write(Buffer.concat(held));
        if (wait) await wait;
      }
      try {
        input.commit(produced, message);
      } catch (err) {
        res.end(sseErrorEvent(err as ApiError));
        return;
      }
      res.end(DONE);
      return;
    }
  } finally {
    res.off('close', onClose);
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
