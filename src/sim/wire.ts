/*
 * OpenAI's wire format for what the simulator generates: a GenerationPlan describes one reply as paced
 * steps (one token each, as far as timing goes) plus how to render it as a JSON body or SSE chunks.
 * Pure: ids and the clock come in as arguments.
 */

import type { ToolCall } from './replies.js';
import { countTokens, splitTokens } from './tokenizer.js';

export type FinishReason = 'stop' | 'length' | 'tool_calls';

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface GenerationPlan {
  promptTokens: number;
  completionTokens: number;
  finishReason: FinishReason;
  /** Tokens each paced step generates (its length is the number of steps). */
  stepTokens: number[];
  /** SSE payloads (JSON objects) to send when step i is generated. */
  chunksForStep(i: number): object[];
  /** SSE payloads after the last step: the finish chunk, then the usage chunk when asked for. */
  finalChunks(includeUsage: boolean): object[];
  /** The non-streaming response body. */
  body(): object;
}

export interface Envelope {
  id: string;
  created: number;
  model: string;
}

function usageOf(promptTokens: number, completionTokens: number): Usage {
  return { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
}

/** The text before the first stop string, as vLLM returns it (the stop string itself left out). */
export function cutAtStop(text: string, stop: readonly string[]): string {
  let end = text.length;
  for (const s of stop) {
    const at = text.indexOf(s);
    if (at >= 0 && at < end) end = at;
  }
  return text.slice(0, end);
}

/**
 * vLLM's ignore_eos: a model that may not end its reply goes on talking. The simulator repeats its reply
 * (space-separated) past maxTokens, so truncateToTokens cuts it there with "length"; stop strings apply
 * to the whole, as they would to a model's continuation.
 */
export function continuedPast(text: string, maxTokens: number): string {
  const tokens = countTokens(text);
  if (tokens === 0) return text;
  return Array.from({ length: Math.floor(maxTokens / tokens) + 1 }, () => text).join(' ');
}

/** Cut a text reply to maxTokens; "length" when it had to. */
export function truncateToTokens(text: string, maxTokens: number): { pieces: string[]; finishReason: 'stop' | 'length' } {
  const pieces = splitTokens(text);
  if (pieces.length <= maxTokens) return { pieces, finishReason: 'stop' };
  return { pieces: pieces.slice(0, maxTokens), finishReason: 'length' };
}

export function chatTextPlan(envelope: Envelope, promptTokens: number, text: string, maxTokens: number): GenerationPlan {
  const { pieces, finishReason } = truncateToTokens(text, maxTokens);
  const chunk = (delta: object, finish: FinishReason | null) => ({
    ...chunkHead(envelope),
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  return {
    promptTokens,
    completionTokens: pieces.length,
    finishReason,
    stepTokens: pieces.map(() => 1),
    chunksForStep: (i) =>
      i === 0
        ? [chunk({ role: 'assistant', content: '' }, null), chunk({ content: pieces[0] }, null)]
        : [chunk({ content: pieces[i] }, null)],
    finalChunks: (includeUsage) => [
      chunk({}, finishReason),
      ...(includeUsage ? [{ ...chunkHead(envelope), choices: [], usage: usageOf(promptTokens, pieces.length) }] : []),
    ],
    body: () => ({
      id: envelope.id,
      object: 'chat.completion',
      created: envelope.created,
      model: envelope.model,
      choices: [{ index: 0, message: { role: 'assistant', content: pieces.join('') }, logprobs: null, finish_reason: finishReason }],
      usage: usageOf(promptTokens, pieces.length),
    }),
  };
}

/**
 * Tool calls. Streamed the way OpenAI does it: a delta with id, type, name and empty arguments, then the
 * arguments string in several pieces. max_tokens does not cut tool calls (see docs/sim.md).
 */
export function chatToolCallPlan(envelope: Envelope, promptTokens: number, calls: ToolCall[]): GenerationPlan {
  const chunk = (delta: object, finish: FinishReason | null) => ({
    ...chunkHead(envelope),
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }],
  });
  // Steps: per call, one header step, then one step per argument token.
  const steps: Array<{ tokens: number; delta: object }> = [];
  calls.forEach((call, index) => {
    steps.push({
      tokens: Math.max(1, countTokens(call.name)),
      delta: { tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.name, arguments: '' } }] },
    });
    for (const piece of splitTokens(call.arguments))
      steps.push({ tokens: 1, delta: { tool_calls: [{ index, function: { arguments: piece } }] } });
  });
  const completionTokens = steps.reduce((n, s) => n + s.tokens, 0);
  return {
    promptTokens,
    completionTokens,
    finishReason: 'tool_calls',
    stepTokens: steps.map((s) => s.tokens),
    chunksForStep: (i) =>
      i === 0 ? [chunk({ role: 'assistant', content: null }, null), chunk(steps[0]!.delta, null)] : [chunk(steps[i]!.delta, null)],
    finalChunks: (includeUsage) => [
      chunk({}, 'tool_calls'),
      ...(includeUsage ? [{ ...chunkHead(envelope), choices: [], usage: usageOf(promptTokens, completionTokens) }] : []),
    ],
    body: () => ({
      id: envelope.id,
      object: 'chat.completion',
      created: envelope.created,
      model: envelope.model,
      choices: [
        {
          index: 0,
          message: {
            role: 'assistant',
            content: null,
            tool_calls: calls.map((call) => ({ id: call.id, type: 'function', function: { name: call.name, arguments: call.arguments } })),
          },
          logprobs: null,
          finish_reason: 'tool_calls',
        },
      ],
      usage: usageOf(promptTokens, completionTokens),
    }),
  };
}

/** Legacy /v1/completions (readiness checks send a one-token completion). */
export function completionPlan(envelope: Envelope, promptTokens: number, text: string, maxTokens: number): GenerationPlan {
  const { pieces, finishReason } = truncateToTokens(text, maxTokens);
  const chunk = (piece: string, finish: FinishReason | null) => ({
    id: envelope.id,
    object: 'text_completion',
    created: envelope.created,
    model: envelope.model,
    choices: [{ index: 0, text: piece, logprobs: null, finish_reason: finish }],
  });
  return {
    promptTokens,
    completionTokens: pieces.length,
    finishReason,
    stepTokens: pieces.map(() => 1),
    chunksForStep: (i) => [chunk(pieces[i]!, null)],
    finalChunks: (includeUsage) => [
      chunk('', finishReason),
      ...(includeUsage
        ? [
            {
              id: envelope.id,
              object: 'text_completion',
              created: envelope.created,
              model: envelope.model,
              choices: [],
              usage: usageOf(promptTokens, pieces.length),
            },
          ]
        : []),
    ],
    body: () => ({
      id: envelope.id,
      object: 'text_completion',
      created: envelope.created,
      model: envelope.model,
      choices: [{ index: 0, text: pieces.join(''), logprobs: null, finish_reason: finishReason }],
      usage: usageOf(promptTokens, pieces.length),
    }),
  };
}

function chunkHead(envelope: Envelope) {
  return { id: envelope.id, object: 'chat.completion.chunk', created: envelope.created, model: envelope.model };
}
