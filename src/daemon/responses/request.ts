/*
 * POST /v1/responses: the body checked field by field (a bad one is a 400 that names it, as OpenAI does), and
 * turned into what the turn needs: the messages sent but never stored (instructions, system and developer
 * items), the new messages to store (item references left to resolve against the store), and the chat
 * completion fields the engine gets. Fields that change nothing for an engine behind chat completions
 * (reasoning, include, service_tier, prompt_cache_key, ...) are accepted and not used. Pure.
 */

import type { ChatMessage } from '../../core/messages.js';
import { ApiError } from '../api-error.js';
import { chatContent, functionCall, type ContentPart } from './items.js';

/** A message to store, or an earlier item to look up (item_reference) and store again as part of this input. */
export type InputEntry = { message: ChatMessage } | { reference: string; param: string };

export interface ResponsesRequest {
  model: string | undefined;
  stream: boolean;
  store: boolean;
  previousResponseId: string | null;
  conversationId: string | null;
  /** Sent before the window, never stored nor carried to the next response. */
  system: ChatMessage[];
  entries: InputEntry[];
  /** Chat completion fields for the engine (tools, tool_choice, max_tokens, temperature, ...). */
  chat: Record<string, unknown>;
  maxOutputTokens: number | null;
  /** The request's own settings, echoed in the response object and kept with it (metadata, tools, ...). */
  echo: ResponseSettings;
}

/** The settings a response object repeats from its request. */
export interface ResponseSettings {
  instructions: string | null;
  metadata: Record<string, string>;
  tools: unknown[];
  tool_choice: unknown;
  temperature: number | null;
  top_p: number | null;
  max_output_tokens: number | null;
  parallel_tool_calls: boolean;
  text: unknown;
  truncation: string;
  user: string | null;
}

const DEFAULTS: ResponseSettings = {
  instructions: null,
  metadata: {},
  tools: [],
  tool_choice: 'auto',
  temperature: null,
  top_p: null,
  max_output_tokens: null,
  parallel_tool_calls: true,
  text: { format: { type: 'text' } },
  truncation: 'disabled',
  user: null,
};

/**
 * What is stored of a response's settings: those that differ from the defaults (most requests set none),
 * never its instructions (not carried to later responses, and system text is never stored).
 */
export function settingsToStore(settings: ResponseSettings): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const value = settings[key];
    const plain = DEFAULTS[key];
    // Scalars compare as they are; objects (metadata, tools, text) only when they hold something else.
    if (value === plain) continue;
    if (typeof value === 'object' && value !== null && JSON.stringify(value) === JSON.stringify(plain)) continue;
    out[key] = value;
  }
  return out;
}

const SETTING_KEYS = (Object.keys(DEFAULTS) as Array<keyof ResponseSettings>).filter((k) => k !== 'instructions');

/** A stored response's settings, the defaults filled in. */
export function storedSettings(stored: Record<string, unknown>): ResponseSettings {
  return { ...DEFAULTS, ...stored, instructions: null } as ResponseSettings;
}

function invalid(param: string, message: string): ApiError {
  return new ApiError(400, `invalid ${param}: ${message}`, { param, code: 'invalid_value' });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function optionalNumber(body: Record<string, unknown>, key: string, min: number, max: number): number | null {
  const v = body[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw invalid(key, `expected a number from ${min} to ${max}`);
  return v;
}

function optionalString(body: Record<string, unknown>, key: string): string | null {
  const v = body[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw invalid(key, 'expected a string');
  return v;
}

function optionalBoolean(body: Record<string, unknown>, key: string): boolean | null {
  const v = body[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'boolean') throw invalid(key, 'expected true or false');
  return v;
}

/** OpenAI's limits on metadata: 16 pairs, keys up to 64 characters, string values up to 512. */
export function parseMetadata(value: unknown, param = 'metadata'): Record<string, string> {
  if (value === undefined || value === null) return {};
  if (!isObject(value)) throw invalid(param, 'expected an object of string values');
  const keys = Object.keys(value);
  if (keys.length > 16) throw invalid(param, 'at most 16 keys');
  for (const key of keys) {
    const v = value[key];
    if (key.length > 64) throw invalid(`${param}.${key}`, 'keys are at most 64 characters');
    if (typeof v !== 'string' || v.length > 512) throw invalid(`${param}.${key}`, 'values are strings of at most 512 characters');
  }
  return { ...(value as Record<string, string>) };
}

const INPUT_PARTS = new Set(['input_text', 'output_text', 'text', 'input_image', 'refusal']);

function parseContent(content: unknown, role: string, param: string): string | unknown[] {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) throw invalid(param, 'expected a string or an array of content parts');
  content.forEach((part, i) => {
    const p = `${param}[${i}]`;
    if (!isObject(part) || typeof part.type !== 'string') throw invalid(p, 'expected a content part with a type');
    if (!INPUT_PARTS.has(part.type)) {
      throw invalid(`${p}.type`, `"${part.type}" is not supported here; send input_text, output_text or input_image parts`);
    }
    if (part.type === 'input_image' && typeof part.image_url !== 'string') {
      throw invalid(`${p}.image_url`, 'an image is sent by URL or data URL here (file ids are not supported)');
    }
    if (part.type === 'refusal' ? typeof part.refusal !== 'string' : part.type !== 'input_image' && typeof part.text !== 'string') {
      throw invalid(p, 'a text part needs its text');
    }
  });
  return chatContent(content as ContentPart[], role);
}

function requireString(item: Record<string, unknown>, key: string, param: string): string {
  const v = item[key];
  if (typeof v !== 'string') throw invalid(`${param}.${key}`, 'expected a string');
  return v;
}

/** One input item: what it adds to the messages sent only (system) or to those stored (entries). */
function parseItem(item: unknown, param: string, system: ChatMessage[], entries: InputEntry[]): void {
  if (!isObject(item)) throw invalid(param, 'expected an input item object');
  const type = item.type ?? 'message';
  switch (type) {
    case 'message': {
      const role = item.role;
      if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer') {
        throw invalid(`${param}.role`, 'expected user, assistant, system or developer');
      }
      const content = parseContent(item.content, role, `${param}.content`);
      if (role === 'system' || role === 'developer') system.push({ role, content });
      else entries.push({ message: { role, content } });
      return;
    }
    case 'function_call':
      entries.push({
        message: {
          role: 'assistant',
          content: null,
          tool_calls: [
            functionCall(
              requireString(item, 'call_id', param),
              requireString(item, 'name', param),
              requireString(item, 'arguments', param),
            ),
          ],
        },
      });
      return;
    case 'function_call_output': {
      const output = item.output;
      let text: string;
      if (typeof output === 'string') text = output;
      else if (Array.isArray(output)) text = String(chatContent(output.filter(isObject) as ContentPart[], 'assistant'));
      else throw invalid(`${param}.output`, 'expected a string');
      entries.push({ message: { role: 'tool', tool_call_id: requireString(item, 'call_id', param), content: text } });
      return;
    }
    case 'item_reference':
      entries.push({ reference: requireString(item, 'id', param), param });
      return;
    case 'reasoning':
      // A reasoning model's own notes, sent back by some clients: nothing an engine behind chat completions reads.
      return;
    default:
      throw invalid(
        `${param}.type`,
        `"${String(type)}" items are not supported by this server; send message, function_call, function_call_output or item_reference items`,
      );
  }
}

/** Function tools as chat completion tools; every other kind is refused (no hosted tools here). */
function parseTools(value: unknown): { chat: unknown[]; echo: unknown[] } {
  if (value === undefined || value === null) return { chat: [], echo: [] };
  if (!Array.isArray(value)) throw invalid('tools', 'expected an array');
  const chat = value.map((tool, i) => {
    const param = `tools[${i}]`;
    if (!isObject(tool)) throw invalid(param, 'expected a tool object');
    if (tool.type !== 'function') {
      throw invalid(
        `${param}.type`,
        `"${String(tool.type)}" tools are not available on this server; only function tools (the client runs them)`,
      );
    }
    const name = requireString(tool, 'name', param);
    const fn: Record<string, unknown> = { name };
    if (typeof tool.description === 'string') fn.description = tool.description;
    if (tool.parameters !== undefined && tool.parameters !== null) fn.parameters = tool.parameters;
    if (typeof tool.strict === 'boolean') fn.strict = tool.strict;
    return { type: 'function', function: fn };
  });
  return { chat, echo: value };
}

function parseToolChoice(value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  if (value === 'auto' || value === 'none' || value === 'required') return value;
  if (isObject(value) && value.type === 'function' && typeof value.name === 'string') {
    return { type: 'function', function: { name: value.name } };
  }
  throw invalid('tool_choice', 'expected "auto", "none", "required" or {"type": "function", "name": ...}');
}

/** text.format as the chat completion's response_format (plain text needs none). */
function parseTextFormat(value: unknown): unknown {
  if (value === undefined || value === null) return undefined;
  if (!isObject(value)) throw invalid('text', 'expected an object');
  const format = value.format;
  if (format === undefined || format === null) return undefined;
  if (!isObject(format)) throw invalid('text.format', 'expected an object');
  if (format.type === 'text') return undefined;
  if (format.type === 'json_object') return { type: 'json_object' };
  if (format.type === 'json_schema') {
    const schema: Record<string, unknown> = { name: typeof format.name === 'string' ? format.name : 'response', schema: format.schema };
    if (typeof format.strict === 'boolean') schema.strict = format.strict;
    if (typeof format.description === 'string') schema.description = format.description;
    return { type: 'json_schema', json_schema: schema };
  }
  throw invalid('text.format.type', 'expected text, json_object or json_schema');
}

function conversationOf(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return value;
  if (isObject(value) && typeof value.id === 'string') return value.id;
  throw invalid('conversation', 'expected a conversation id or {"id": ...}');
}

/**
 * Items as a conversation stores them (POST /v1/conversations, .../items): messages, calls, outputs and
 * references; system and developer messages are refused, since they are never stored (send them as a
 * response's instructions or input).
 */
export function parseStoredItems(items: unknown, param: string): InputEntry[] {
  if (items === undefined || items === null) return [];
  if (!Array.isArray(items)) throw invalid(param, 'expected an array of items');
  const system: ChatMessage[] = [];
  const entries: InputEntry[] = [];
  items.forEach((item, i) => {
    parseItem(item, `${param}[${i}]`, system, entries);
    if (system.length > 0) {
      throw invalid(`${param}[${i}].role`, 'system and developer messages are not stored; send them with each response as instructions');
    }
  });
  return entries;
}

export function parseResponsesRequest(body: unknown): ResponsesRequest {
  if (!isObject(body)) throw new ApiError(400, 'the request body must be a JSON object', { code: 'invalid_body' });
  const model = optionalString(body, 'model') ?? undefined;
  if (body.background === true) throw invalid('background', 'background responses are not supported by this server');
  const previousResponseId = optionalString(body, 'previous_response_id');
  const conversationId = conversationOf(body.conversation);
  if (previousResponseId !== null && conversationId !== null) {
    throw new ApiError(400, 'previous_response_id and conversation cannot be used together; send one of them', {
      param: 'previous_response_id',
      code: 'invalid_value',
    });
  }
  const instructions = optionalString(body, 'instructions');
  const system: ChatMessage[] = instructions ? [{ role: 'developer', content: instructions }] : [];
  const entries: InputEntry[] = [];
  const input = body.input;
  if (typeof input === 'string') entries.push({ message: { role: 'user', content: input } });
  else if (Array.isArray(input)) input.forEach((item, i) => parseItem(item, `input[${i}]`, system, entries));
  else if (input !== undefined && input !== null) throw invalid('input', 'expected a string or an array of input items');
  if (entries.length === 0) {
    throw new ApiError(
      400,
      'input needs at least one user, assistant, function call or function call output item (instructions and system items are not stored)',
      {
        param: 'input',
        code: 'invalid_value',
      },
    );
  }
  const tools = parseTools(body.tools);
  const toolChoice = parseToolChoice(body.tool_choice);
  const maxOutputTokens = optionalNumber(body, 'max_output_tokens', 1, Number.MAX_SAFE_INTEGER);
  if (maxOutputTokens !== null && !Number.isInteger(maxOutputTokens)) throw invalid('max_output_tokens', 'expected a whole number');
  const temperature = optionalNumber(body, 'temperature', 0, 2);
  const topP = optionalNumber(body, 'top_p', 0, 1);
  const parallel = optionalBoolean(body, 'parallel_tool_calls');
  const responseFormat = parseTextFormat(body.text);

  const chat: Record<string, unknown> = {};
  if (model !== undefined) chat.model = model;
  if (tools.chat.length > 0) chat.tools = tools.chat;
  if (toolChoice !== undefined && tools.chat.length > 0) chat.tool_choice = toolChoice;
  if (parallel !== null && tools.chat.length > 0) chat.parallel_tool_calls = parallel;
  if (maxOutputTokens !== null) chat.max_tokens = maxOutputTokens;
  if (temperature !== null) chat.temperature = temperature;
  if (topP !== null) chat.top_p = topP;
  if (responseFormat !== undefined) chat.response_format = responseFormat;

  return {
    model,
    stream: optionalBoolean(body, 'stream') === true,
    store: optionalBoolean(body, 'store') !== false,
    previousResponseId,
    conversationId,
    system,
    entries,
    chat,
    maxOutputTokens,
    echo: {
      instructions,
      metadata: parseMetadata(body.metadata),
      tools: tools.echo,
      tool_choice: body.tool_choice ?? 'auto',
      temperature,
      top_p: topP,
      max_output_tokens: maxOutputTokens,
      parallel_tool_calls: parallel ?? true,
      text: isObject(body.text) ? body.text : { format: { type: 'text' } },
      truncation: typeof body.truncation === 'string' ? body.truncation : 'disabled',
      user: typeof body.user === 'string' ? body.user : null,
    },
  };
}
