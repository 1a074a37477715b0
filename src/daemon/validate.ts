/*
 * Only the fields the daemon itself reads are checked; everything else in the body (tools, tool_choice,
 * temperature, response_format, stream_options, ...) goes to the upstream untouched, which validates it.
 */

import type { z as Zod } from 'zod';
import { zod } from '../core/zod-sync.js';
import { ApiError } from './api-error.js';

function buildSchema(z: typeof Zod) {
  const contentPart = z.looseObject({ type: z.string() });
  const message = z.looseObject({
    role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
    content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
    tool_calls: z.array(z.looseObject({})).optional(),
    tool_call_id: z.string().optional(),
    name: z.string().optional(),
  });
  const tokens = z.number().int().positive().nullable().optional();

  const chatRequestSchema = z.looseObject({
    messages: z.array(message).min(1),
    model: z.string().min(1).optional(),
    stream: z.boolean().nullable().optional(),
    max_tokens: tokens,
    max_completion_tokens: tokens,
  });
  return chatRequestSchema;
}

let schema: ReturnType<typeof buildSchema> | undefined;
/** The schema, zod loaded on first use: only for a body that plainlyValid refuses. */
export function chatRequestSchema(): ReturnType<typeof buildSchema> {
  return (schema ??= buildSchema(zod()));
}

export type ChatRequest = Zod.infer<ReturnType<typeof buildSchema>>;

/** messages[2].content style, as OpenAI names a parameter. */
export function paramName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out || '(body)';
}

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function']);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const optionalString = (v: unknown) => v === undefined || typeof v === 'string';
const optionalTokens = (v: unknown) => v === undefined || v === null || (Number.isSafeInteger(v) && (v as number) > 0);

function plainContent(content: unknown): boolean {
  if (content === undefined || content === null || typeof content === 'string') return true;
  return Array.isArray(content) && content.every((part) => isObject(part) && typeof part.type === 'string');
}

/**
 * The schema's checks written out, for the requests that pass them: zod's parse was 3% of the daemon's CPU
 * on a stateless request (#21). Stricter than the schema, never looser: whatever this refuses goes to zod,
 * which accepts it or names the bad field.
 */
function plainlyValid(body: Record<string, unknown>): boolean {
  const { messages, model, stream } = body;
  if (!Array.isArray(messages) || messages.length === 0) return false;
  if (!(model === undefined || (typeof model === 'string' && model.length > 0))) return false;
  if (!(stream === undefined || stream === null || typeof stream === 'boolean')) return false;
  if (!optionalTokens(body.max_tokens) || !optionalTokens(body.max_completion_tokens)) return false;
  for (const m of messages) {
    if (!isObject(m) || typeof m.role !== 'string' || !ROLES.has(m.role) || !plainContent(m.content)) return false;
    if (!optionalString(m.tool_call_id) || !optionalString(m.name)) return false;
    if (m.tool_calls !== undefined && !(Array.isArray(m.tool_calls) && m.tool_calls.every(isObject))) return false;
  }
  return true;
}

/**
 * Checks the body and returns it as it was (not zod's copy), so unknown fields survive. A bad field is a 400
 * that names it.
 */
export function validateChatRequest(body: unknown): ChatRequest {
  if (!isObject(body)) {
    throw new ApiError(400, 'the request body must be a JSON object', { code: 'invalid_body' });
  }
  if (plainlyValid(body)) return body as ChatRequest;
  const result = chatRequestSchema().safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const param = paramName(issue.path);
    throw new ApiError(400, `invalid ${param}: ${issue.message}`, { param, code: 'invalid_value' });
  }
  return body as ChatRequest;
}
