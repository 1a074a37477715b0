/*
 * Validation of the chat and legacy completion request bodies the simulator and the CPU engine serve, with
 * vLLM's status codes and messages. Pure: returns either the fields the engines use or the error to answer with.
 */

import type { RequestProblem } from './errors.js';
import type { ChatMessage, ToolChoice, ToolDefinition } from './messages.js';

export interface CommonFields {
  model: string;
  stream: boolean;
  includeUsage: boolean;
  maxTokens: number | undefined;
  /** Stop strings: the reply ends before the first one (finish_reason "stop"). */
  stop: string[];
  /** vLLM's ignore_eos: the reply does not end at the end of generation, only at max_tokens or a stop string. */
  ignoreEos: boolean;
}

export interface ChatRequest extends CommonFields {
  messages: ChatMessage[];
  tools: ToolDefinition[] | undefined;
  toolChoice: ToolChoice;
}

export interface CompletionRequest extends CommonFields {
  prompt: string;
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

type Result<T> = { ok: true; value: T } | { ok: false; problem: RequestProblem };

const bad = (message: string, param: string | null = null): { ok: false; problem: RequestProblem } => ({
  ok: false,
  problem: { status: 400, message, param },
});

export function parseJsonBody(text: string): Result<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return bad(`The request body is not valid JSON: ${(err as Error).message}`);
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return bad('The request body must be a JSON object.');
  return { ok: true, value: parsed as Record<string, unknown> };
}

function commonFields(body: Record<string, unknown>, servedModelNames: readonly string[]): Result<CommonFields> {
  let model = servedModelNames[0]!;
  if (body.model !== undefined && body.model !== null) {
    if (typeof body.model !== 'string') return bad('model must be a string.', 'model');
    if (!servedModelNames.includes(body.model)) {
      return { ok: false, problem: { status: 404, message: `The model \`${body.model}\` does not exist.`, param: 'model' } };
    }
    model = body.model;
  }
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean')
    return bad('stream must be a boolean.', 'stream');
  const stream = body.stream === true;
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null) {
    if (typeof streamOptions !== 'object') return bad('stream_options must be an object.', 'stream_options');
    if (!stream) return bad('Stream options can only be defined when `stream=True`.', 'stream_options');
  }
  const includeUsage = stream && (streamOptions as { include_usage?: unknown } | null | undefined)?.include_usage === true;

  let maxTokens: number | undefined;
  for (const param of ['max_completion_tokens', 'max_tokens'] as const) {
    const value = body[param];
    if (value === undefined || value === null) continue;
    if (typeof value !== 'number' || !Number.isInteger(value)) return bad(`${param} must be an integer.`, param);
    if (value < 1) return bad(`${param} must be at least 1, got ${value}.`, param);
    maxTokens ??= value;
  }
  let stop: string[] = [];
  if (typeof body.stop === 'string') stop = [body.stop];
  else if (Array.isArray(body.stop) && body.stop.every((s) => typeof s === 'string')) stop = body.stop as string[];
  else if (body.stop !== undefined && body.stop !== null) return bad('stop must be a string or an array of strings.', 'stop');
  const ignoreEos = body.ignore_eos;
  if (ignoreEos !== undefined && ignoreEos !== null && typeof ignoreEos !== 'boolean')
    return bad('ignore_eos must be a boolean.', 'ignore_eos');
  return { ok: true, value: { model, stream, includeUsage, maxTokens, stop: stop.filter((s) => s !== ''), ignoreEos: ignoreEos === true } };
}

export function parseChatRequest(body: Record<string, unknown>, servedModelNames: readonly string[]): Result<ChatRequest> {
  const { messages } = body;
  if (messages === undefined || messages === null) return bad('Field required: messages.', 'messages');
  if (!Array.isArray(messages)) return bad('messages must be an array of message objects.', 'messages');
  if (messages.length === 0) return bad('messages must contain at least one message.', 'messages');
  for (const [i, message] of messages.entries()) {
    if (!message || typeof message !== 'object' || Array.isArray(message))
      return bad(`messages[${i}] must be an object.`, `messages[${i}]`);
    const { role, content } = message as Record<string, unknown>;
    if (typeof role !== 'string' || !ROLES.has(role)) {
      return bad(
        `messages[${i}].role must be one of system, developer, user, assistant, tool; got ${JSON.stringify(role)}.`,
        `messages[${i}].role`,
      );
    }
    if (content !== undefined && content !== null && typeof content !== 'string' && !Array.isArray(content)) {
      return bad(`messages[${i}].content must be a string or an array of content parts.`, `messages[${i}].content`);
    }
  }
  const common = commonFields(body, servedModelNames);
  if (!common.ok) return common;

  const { tools, tool_choice: toolChoice } = body;
  if (tools !== undefined && tools !== null && !Array.isArray(tools)) return bad('tools must be an array.', 'tools');
  if (
    toolChoice !== undefined &&
    toolChoice !== null &&
    !(typeof toolChoice === 'string' && ['none', 'auto', 'required'].includes(toolChoice)) &&
    !(typeof toolChoice === 'object' && !Array.isArray(toolChoice))
  ) {
    return bad('tool_choice must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}}.', 'tool_choice');
  }
  return {
    ok: true,
    value: {
      ...common.value,
      messages: messages as ChatMessage[],
      tools: (tools as ToolDefinition[] | null | undefined) ?? undefined,
      toolChoice: (toolChoice as ToolChoice | null) ?? undefined,
    },
  };
}

export function parseCompletionRequest(body: Record<string, unknown>, servedModelNames: readonly string[]): Result<CompletionRequest> {
  let { prompt } = body;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === 'string') prompt = prompt[0];
  if (prompt === undefined || prompt === null) return bad('Field required: prompt.', 'prompt');
  if (typeof prompt !== 'string') return bad('prompt must be a string (token-id prompts and batches are not simulated).', 'prompt');
  const common = commonFields(body, servedModelNames);
  if (!common.ok) return common;
  // The legacy endpoint's default is 16 tokens, as in OpenAI's API.
  return { ok: true, value: { ...common.value, maxTokens: common.value.maxTokens ?? 16, prompt } };
}

/** vLLM refuses a request whose prompt plus max_tokens exceeds the context window. */
export function contextProblem(
  promptTokens: number,
  maxTokens: number | undefined,
  maxModelLen: number,
  param: string,
): RequestProblem | undefined {
  if (promptTokens + (maxTokens ?? 0) <= maxModelLen && promptTokens < maxModelLen) return undefined;
  return {
    status: 400,
    message:
      `This model's maximum context length is ${maxModelLen} tokens. However, you requested ${promptTokens + (maxTokens ?? 0)} tokens ` +
      `(${promptTokens} in the messages, ${maxTokens ?? 0} in the completion). Please reduce the length of the messages or completion.`,
    param,
  };
}
