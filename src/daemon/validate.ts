/*
 * Only the fields the daemon itself reads are checked; everything else in the body (tools, tool_choice,
 * temperature, response_format, stream_options, ...) goes to the upstream untouched, which validates it.
 */

import { z } from 'zod';
import { ApiError } from './api-error.js';

const contentPart = z.looseObject({ type: z.string() });
const message = z.looseObject({
  role: z.enum(['system', 'developer', 'user', 'assistant', 'tool', 'function']),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  tool_calls: z.array(z.looseObject({})).optional(),
  tool_call_id: z.string().optional(),
  name: z.string().optional(),
});
const tokens = z.number().int().positive().nullable().optional();

export const chatRequestSchema = z.looseObject({
  messages: z.array(message).min(1),
  model: z.string().min(1).optional(),
  stream: z.boolean().nullable().optional(),
  max_tokens: tokens,
  max_completion_tokens: tokens,
});

export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** messages[2].content style, as OpenAI names a parameter. */
export function paramName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out || '(body)';
}

/**
 * Checks the body and returns it as it was (not zod's copy), so unknown fields survive. A bad field is a 400
 * that names it.
 */
export function validateChatRequest(body: unknown): ChatRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new ApiError(400, 'the request body must be a JSON object', { code: 'invalid_body' });
  }
  const result = chatRequestSchema.safeParse(body);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const param = paramName(issue.path);
    throw new ApiError(400, `invalid ${param}: ${issue.message}`, { param, code: 'invalid_value' });
  }
  return body as ChatRequest;
}
