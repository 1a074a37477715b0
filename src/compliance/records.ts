// Every text field of a record rewritten by one function, by construction: a chat message, its content parts,
// tool calls and tool results, and any record kind added later (the Responses API's items) are walked as
// JSON values, and every string is rewritten except the few whose key marks them as structure (roles, types,
// ids, tool names). A field nobody listed is text, so it is redacted: forgetting a field errs towards hiding.
// Attachments (images, audio, files) cannot be redacted: they become a placeholder part unless kept.

export type AttachmentPolicy = 'drop' | 'keep';

/** What replaces the text of a string (redaction: [PHONE]; masking: <PHONE_1>). */
export type Rewrite = (text: string) => string;

/** Keys whose string values are structure, not text, wherever they appear. */
const STRUCTURAL_KEYS = new Set([
  'role',
  'type',
  'id',
  'tool_call_id',
  'call_id',
  'name', // a tool's or function's name; a message's own `name` (a participant) is handled by the caller
  'object',
  'status',
  'model',
  'detail',
  'format',
  'mime_type',
]);

/** Content parts that carry an attachment, and the placeholder each becomes when dropped. */
const ATTACHMENTS: Record<string, string> = {
  image_url: '[IMAGE]',
  input_image: '[IMAGE]',
  image: '[IMAGE]',
  input_audio: '[AUDIO]',
  audio: '[AUDIO]',
  file: '[FILE]',
  input_file: '[FILE]',
};

/**
 * The placeholder part of a dropped attachment: a text part, so that a later turn's window still goes to
 * the engine as valid messages (an image part without its image would be refused).
 */
function attachmentPlaceholder(type: string): { type: string; text: string } {
  return { type: type.startsWith('input_') ? 'input_text' : 'text', text: ATTACHMENTS[type]! };
}

const LONG_BARE_NUMBER = /([:[,]\s*)(-?\d{7,})(?=\s*[,}\]])/g;

/**
 * A string that holds JSON (tool-call arguments, a tool's result) stays valid JSON: a bare number rewritten
 * to a placeholder ({"phone": 13812345678}) would break it, so then long bare numbers are quoted first and
 * the placeholder lands inside a JSON string. When that still does not parse, the rewritten text is kept:
 * hiding the value comes before the syntax.
 */
export function rewriteText(text: string, rewrite: Rewrite): string {
  const out = rewrite(text);
  if (out === text) return text;
  const first = text.trimStart().charCodeAt(0);
  if (first !== 123 && first !== 91) return out; // { or [
  if (parses(out) || !parses(text)) return out;
  const quoted = rewrite(text.replace(LONG_BARE_NUMBER, '$1"$2"'));
  return parses(quoted) ? quoted : out;
}

function parses(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** The value with every text string rewritten and attachments dropped or kept; the same value when nothing changed. */
export function rewriteRecord(value: unknown, rewrite: Rewrite, attachments: AttachmentPolicy): unknown {
  if (typeof value === 'string') return rewriteText(value, rewrite);
  if (Array.isArray(value)) {
    let out: unknown[] | null = null;
    for (let i = 0; i < value.length; i++) {
      const v = rewriteRecord(value[i], rewrite, attachments);
      if (v !== value[i] && out === null) out = value.slice(0, i);
      if (out !== null) out.push(v);
    }
    return out ?? value;
  }
  if (value === null || typeof value !== 'object') return value;
  const record = value as Record<string, unknown>;
  const type = record.type;
  if (typeof type === 'string' && Object.hasOwn(ATTACHMENTS, type)) {
    return attachments === 'keep' ? value : attachmentPlaceholder(type);
  }
  let out: Record<string, unknown> | null = null;
  for (const key of Object.keys(record)) {
    const v = record[key];
    if (typeof v === 'string' && STRUCTURAL_KEYS.has(key)) continue;
    const w = rewriteRecord(v, rewrite, attachments);
    if (w === v) continue;
    out ??= { ...record };
    out[key] = w;
  }
  return out ?? value;
}
