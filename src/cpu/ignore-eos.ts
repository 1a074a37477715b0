/*
 * vLLM's `ignore_eos` request field on the CPU engine: the reply does not end at the model's end of
 * generation and runs to `max_tokens` (benchmarks use it for replies of a fixed length). llama.cpp's own
 * server does it by biasing every end-of-generation token to -infinity; node-llama-cpp's LlamaChat also
 * ends a reply on its chat wrapper's stop triggers (ChatML: EOS, `<|im_end|>` as a special token and as
 * text), so those are turned off too. The client's `stop` strings still apply.
 */

import type { RequestProblem } from '../openai-server/errors.js';
import type { ChatRequest } from '../openai-server/requests.js';
import type { ChatWrapperLike, LlamaModelLike, NodeLlamaCpp, Token, TokenBiasLike } from './runtime.js';

/** ignore_eos without max_tokens would run silently to the end of the context: refused (pure). */
export function ignoreEosProblem(request: Pick<ChatRequest, 'ignoreEos' | 'maxTokens'>): RequestProblem | undefined {
  if (!request.ignoreEos || request.maxTokens !== undefined) return undefined;
  return {
    status: 400,
    message:
      'ignore_eos needs max_tokens: without it the reply would run until the context is full. Send max_tokens (or max_completion_tokens) with ignore_eos.',
    param: 'max_tokens',
  };
}

/** Every token of the vocabulary llama.cpp counts as ending a generation, as llama.cpp's server collects them. */
export function endOfGenerationTokens(model: Pick<LlamaModelLike, 'iterateAllTokens' | 'isEogToken'>): Token[] {
  const tokens: Token[] = [];
  for (const token of model.iterateAllTokens()) if (model.isEogToken(token)) tokens.push(token);
  return tokens;
}

/**
 * A TokenBias that never samples the given tokens. TokenBias.set() skips EOG tokens on purpose (3.21.1),
 * so they go into its internal `_biases` map, which the context reads when it builds the sampler; a
 * check keeps a future node-llama-cpp that changes this from failing silently.
 */
export function banTokens(
  runtime: Pick<NodeLlamaCpp, 'TokenBias'>,
  model: Pick<LlamaModelLike, 'tokenizer'>,
  tokens: readonly Token[],
): TokenBiasLike {
  const bias = new runtime.TokenBias(model.tokenizer);
  const biases = (bias as unknown as { _biases?: unknown })._biases;
  if (!(biases instanceof Map))
    throw new Error('node-llama-cpp TokenBias has no _biases map: ignore_eos needs node-llama-cpp 3.21.1 (engines/cpu/package.json)');
  for (const token of tokens) biases.set(token, -Infinity);
  return bias;
}

/**
 * The same chat wrapper (same template, same prompt), without stop triggers: an object that inherits
 * everything from it and only drops `stopGenerationTriggers` from the context state it renders.
 */
export function withoutStopTriggers<W extends ChatWrapperLike>(wrapper: W): W {
  const open = Object.create(wrapper) as W;
  Object.defineProperty(open, 'generateContextState', {
    value(this: W, options: Parameters<W['generateContextState']>[0]) {
      return { ...wrapper.generateContextState.call(this, options), stopGenerationTriggers: [] };
    },
  });
  return open;
}
