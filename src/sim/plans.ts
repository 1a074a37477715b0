/*
 * From a request body to what the simulator will send: the reply rules (replies.ts), the token budget, stop
 * strings and ignore_eos applied, as a GenerationPlan (wire.ts) that the server paces out. Pure apart from
 * the random id.
 */

import { randomUUID } from 'node:crypto';
import type { RequestProblem } from '../openai-server/errors.js';
import { contextProblem, parseChatRequest, parseCompletionRequest } from '../openai-server/requests.js';
import { completionReply, decideChatReply, promptTokenCount } from './replies.js';
import { countTokens } from './tokenizer.js';
import { chatTextPlan, chatToolCallPlan, completionPlan, continuedPast, cutAtStop, type GenerationPlan } from './wire.js';

export type Planned = { ok: true; plan: GenerationPlan; stream: boolean; includeUsage: boolean } | { ok: false; problem: RequestProblem };

/** kind: 'chat' for /v1/chat/completions, 'text' for the legacy /v1/completions. */
export function planRequest(
  body: Record<string, unknown>,
  kind: 'chat' | 'text',
  options: { servedModelNames: readonly string[]; maxModelLen: number },
  created: number,
): Planned {
  const envelope = { id: '', created, model: '' };
  let plan: GenerationPlan;
  let stream: boolean;
  let includeUsage: boolean;
  if (kind === 'chat') {
    const parsed = parseChatRequest(body, options.servedModelNames);
    if (!parsed.ok) return parsed;
    const request = parsed.value;
    const promptTokens = promptTokenCount(request.messages, request.tools);
    const tooLong = contextProblem(promptTokens, request.maxTokens, options.maxModelLen, 'messages');
    if (tooLong) return { ok: false, problem: tooLong };
    Object.assign(envelope, { id: `chatcmpl-${randomUUID().replace(/-/g, '')}`, model: request.model });
    const reply = decideChatReply({ messages: request.messages, tools: request.tools, tool_choice: request.toolChoice });
    const budget = request.maxTokens ?? options.maxModelLen - promptTokens;
    plan =
      reply.kind === 'text'
        ? chatTextPlan(
            envelope,
            promptTokens,
            cutAtStop(request.ignoreEos ? continuedPast(reply.text, budget) : reply.text, request.stop),
            budget,
          )
        : chatToolCallPlan(envelope, promptTokens, reply.calls);
    ({ stream, includeUsage } = request);
  } else {
    const parsed = parseCompletionRequest(body, options.servedModelNames);
    if (!parsed.ok) return parsed;
    const request = parsed.value;
    const promptTokens = countTokens(request.prompt);
    const tooLong = contextProblem(promptTokens, request.maxTokens, options.maxModelLen, 'prompt');
    if (tooLong) return { ok: false, problem: tooLong };
    Object.assign(envelope, { id: `cmpl-${randomUUID().replace(/-/g, '')}`, model: request.model });
    const budget = request.maxTokens ?? 16;
    const reply = completionReply(request.prompt);
    plan = completionPlan(
      envelope,
      promptTokens,
      cutAtStop(request.ignoreEos ? continuedPast(reply, budget) : reply, request.stop),
      budget,
    );
    ({ stream, includeUsage } = request);
  }

  return { ok: true, plan, stream, includeUsage };
}
