/*
 * What the CPU engine can refuse before tokenizing a prompt. Tokenizing runs on the event loop (node-llama-cpp's
 * tokenize is synchronous): 15.6 MB of prompt froze /health for 6.8 s. Tokens cover the text they come from,
 * end to end, so a prompt of B bytes has at least B / L tokens, L being the most bytes of text any one token
 * of the vocabulary stands for. With L measured once per model (a walk over the vocabulary at load), text
 * over context x L bytes cannot fit, whatever its tokens turn out to be: it is refused without tokenizing,
 * and nothing that could fit ever is. Pure.
 */

import { MAX_BODY_BYTES } from '../openai-server/body.js';
import type { RequestProblem } from '../openai-server/errors.js';
import { messageText, type ChatMessageLike } from './history.js';
import type { LlamaModelLike } from './runtime.js';

/**
 * A JSON string can spend 6 bytes on one byte of text (`\u0001`); Python's json.dumps, which escapes every
 * non-ASCII character by default, spends 6 on the 2 of "é". A body within 6x the text bound can still hold a
 * prompt that fits, so the body is refused only beyond that, and the text is then measured exactly.
 */
const JSON_ESCAPE_FACTOR = 6;
const YIELD_EVERY_TOKENS = 4096;
/** The rest of a request: roles, field names, sampling fields, a system prompt's framing. */
const BODY_SLACK_BYTES = 64 * 1024;

export interface PromptBounds {
  /** Tokens per sequence. */
  contextSize: number;
  /** The most bytes of text one token stands for (+1, see longestTokenBytes). */
  tokenBytes: number;
  /** Message text over this many bytes cannot fit: contextSize x tokenBytes. */
  textBytes: number;
  /** Request bodies over this many bytes are refused unread: 6 x textBytes + slack, at most MAX_BODY_BYTES. */
  bodyBytes: number;
  /** bodyBytes is the context's bound (a body over it cannot carry a prompt that fits), not the engine-wide cap. */
  bodyFromContext: boolean;
}

/**
 * The most bytes of text one token of the vocabulary stands for, special tokens included (the chat template's
 * `<|im_start|>` is one token of 12 bytes), plus one: detokenizing a lone SentencePiece token may drop the
 * leading space it stands for. About 5.5 us per token here (0.8 s for a 152k vocabulary), so the walk yields to
 * the event loop every few thousand tokens: /health keeps answering while a model loads.
 */
export async function longestTokenBytes(model: Pick<LlamaModelLike, 'iterateAllTokens' | 'detokenize'>): Promise<number> {
  let longest = 0;
  let walked = 0;
  for (const token of model.iterateAllTokens()) {
    longest = Math.max(longest, Buffer.byteLength(model.detokenize([token], true)));
    if (++walked % YIELD_EVERY_TOKENS === 0) await new Promise((resolve) => setImmediate(resolve));
  }
  return longest + 1;
}

export function promptBounds(contextSize: number, tokenBytes: number): PromptBounds {
  const textBytes = contextSize * tokenBytes;
  const fromContext = JSON_ESCAPE_FACTOR * textBytes + BODY_SLACK_BYTES;
  return {
    contextSize,
    tokenBytes,
    textBytes,
    bodyBytes: Math.min(MAX_BODY_BYTES, fromContext),
    bodyFromContext: fromContext <= MAX_BODY_BYTES,
  };
}

/** UTF-8 bytes of the text the messages carry (strings and text parts); the rendered prompt only adds to it. */
export function messagesTextBytes(messages: readonly ChatMessageLike[]): number {
  let bytes = 0;
  for (const message of messages) bytes += Buffer.byteLength(messageText(message.content));
  return bytes;
}

/** Text that needs more tokens than the context even at the longest token each: vLLM's first sentence, then why. */
export function textBoundProblem(bounds: PromptBounds, textBytes: number, maxTokens: number | undefined): RequestProblem | undefined {
  const atLeast = Math.ceil(textBytes / bounds.tokenBytes);
  if (atLeast < bounds.contextSize && atLeast + (maxTokens ?? 0) <= bounds.contextSize) return undefined;
  return {
    status: 400,
    message:
      `This model's maximum context length is ${bounds.contextSize} tokens. However, your messages hold ${textBytes} bytes of text ` +
      `and no token of this model is longer than ${bounds.tokenBytes} bytes, so they are at least ${atLeast} tokens` +
      `${maxTokens ? `, and ${maxTokens} in the completion` : ''}. Please reduce the length of the messages or completion.`,
    param: 'messages',
  };
}

/**
 * A body over the bound. Over the context's bound it is a prompt that cannot fit: 400 with vLLM's first sentence,
 * as for the text bound, so a client sees the same error for a huge prompt whatever its size. Over the
 * engine-wide cap (contexts so large that 6x their text passes 16 MiB) it is a body too large: 413.
 */
export function bodyBoundProblem(bounds: PromptBounds, declaredBytes: number | undefined): RequestProblem {
  const body = declaredBytes === undefined ? `a request body over ${bounds.bodyBytes} bytes` : `a request body of ${declaredBytes} bytes`;
  if (!bounds.bodyFromContext)
    return {
      status: 413,
      message: `The request body is larger than ${bounds.bodyBytes} bytes. Please reduce the length of the messages.`,
      param: null,
    };
  return {
    status: 400,
    message:
      `This model's maximum context length is ${bounds.contextSize} tokens. However, you sent ${body}, more than the ${bounds.bodyBytes} ` +
      `that can carry ${bounds.textBytes} bytes of text (the most a prompt that fits can hold: no token of this model is longer than ` +
      `${bounds.tokenBytes} bytes). Please reduce the length of the messages.`,
    param: 'messages',
  };
}
