/*
 * A response on a profile with server-side tools (daemon.tools), when the request brings no function tools
 * of its own: as for chat completions, the daemon offers the profile's tools, runs the calls the model makes,
 * feeds the results back and asks again, up to maxRounds rounds (then once more without tools). The rounds
 * are whole replies (not streamed); the calls and results are stored with the turn, between its input and
 * its output, and are not output items (the client did not ask for them and must not run them).
 */

import { performance } from 'node:perf_hooks';
import type { ChatMessage } from '../../core/messages.js';
import { ApiError } from '../api-error.js';
import { bodyFor, maxTokensOf, type UpstreamExchange } from '../relay.js';
import type { RequestContext } from '../routes.js';
import type { Routed } from '../routing/failover.js';
import type { DaemonServices } from '../services.js';
import { parseCompletion } from '../sse.js';
import { callsOf } from '../tools/tool-turn.js';

export interface ServerTools {
  names: readonly string[];
  maxRounds: number;
}

export type RoundsResult =
  | { kind: 'answer'; message: ChatMessage; finishReason: unknown; produced: ChatMessage[]; routed: Routed }
  /** The engine's own error reply (status and body), to pass on. */
  | { kind: 'engine_error'; routed: Routed; body: Buffer }
  /** The client went away. */
  | { kind: 'gone' };

/** The message and finish reason of an engine's non-streamed reply; 502 upstream_bad_reply when it has none. */
export function completionOf(reply: Buffer, ctx: RequestContext): { message: ChatMessage; finishReason: unknown } {
  const parsed = parseCompletion(reply);
  if (!parsed) {
    ctx.record.outcome = 'upstream_failed';
    throw new ApiError(502, 'the upstream engine answered without a chat completion message; nothing was stored', {
      code: 'upstream_bad_reply',
    });
  }
  return parsed;
}

export async function toolRounds(
  services: DaemonServices,
  ctx: RequestContext,
  exchange: UpstreamExchange,
  payload: Record<string, unknown>,
  tools: ServerTools,
): Promise<RoundsResult> {
  const messages = [...(payload.messages as ChatMessage[])];
  const produced: ChatMessage[] = [];
  const definitions = services.tools.definitions(tools.names);
  for (let round = 1; ; round++) {
    const offer = round <= tools.maxRounds;
    const body: Record<string, unknown> = { ...payload, messages, stream: false };
    delete body.stream_options;
    if (offer) {
      body.tools = definitions;
      body.tool_choice = 'auto';
    }
    const bytes = Buffer.from(JSON.stringify(body));
    // The size is what rate-limit budgets and cheapest routing estimate the request by (docs/cost-and-capacity.md).
    const routed = await exchange.send((member) => bodyFor(member, body, bytes), { body: bytes, maxTokens: maxTokensOf(body) });
    if (routed === null) return { kind: 'gone' };
    const reply = await exchange.collect(routed);
    if (reply === null || exchange.clientLeft()) return { kind: 'gone' };
    if (routed.response.statusCode !== 200) {
      if (round === 1) return { kind: 'engine_error', routed, body: reply };
      ctx.record.outcome = 'upstream_failed';
      throw new ApiError(502, `the upstream engine answered ${routed.response.statusCode} in a later tool round; nothing was stored`, {
        code: 'upstream_failed',
      });
    }
    const { message, finishReason } = completionOf(reply, ctx);
    if (!offer || !message.tool_calls || message.tool_calls.length === 0)
      return { kind: 'answer', message, finishReason, produced, routed };
    const calls = callsOf(message);
    const assistant: ChatMessage = {
      ...message,
      tool_calls: calls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })),
    };
    const started = performance.now();
    const results = await Promise.all(calls.map((c) => services.tools.run(c, { allowed: tools.names, signal: exchange.signal })));
    // Waiting on tools is time outside the daemon, like waiting on the engine.
    ctx.record.upstreamMs += performance.now() - started;
    const outputs: ChatMessage[] = calls.map((c, i) => ({ role: 'tool', tool_call_id: c.id, content: results[i]!.content }));
    messages.push(assistant, ...outputs);
    produced.push(assistant, ...outputs);
  }
}
