import type { ChatMessage } from '../core/messages.js';
import { redactText, type Detector } from './detectors.js';
import { rewriteRecord, rewriteText, type AttachmentPolicy, type Rewrite } from './records.js';

export type { AttachmentPolicy };

/** Roles whose message `name` is a tool's or function's name, not a participant's. */
const TOOL_ROLES = new Set(['tool', 'function']);

export interface RedactOptions {
  /** Images, audio and files: replaced by a placeholder part (default), or kept as sent. */
  attachments?: AttachmentPolicy;
}

/**
 * Redaction of a whole chat message, every text field of it (records.ts): the content (a string, or every
 * text of its parts), tool calls' arguments, tool results, and fields added later, with attachments
 * dropped unless kept. Roles, ids and tool names are kept. A participant's `name` (on a user's or an
 * assistant's message) is a name by its field, so it is stored as [NAME] while names are redacted, and
 * read by the detectors like text otherwise. Returns the same object when nothing changed, so the common
 * case allocates nothing.
 */
export function redactMessage(message: ChatMessage, detectors: readonly Detector[], options: RedactOptions = {}): ChatMessage {
  return rewriteMessage(message, (text) => redactText(text, detectors), {
    attachments: options.attachments ?? 'drop',
    participantName: detectors.some((d) => d.label === 'NAME') ? () => '[NAME]' : null,
    active: detectors.length > 0,
  });
}

/**
 * A message with every text field rewritten by `rewrite` (redaction, or masking for a remote upstream).
 * participantName: what a participant's name becomes (null: rewritten like text); active: false when
 * `rewrite` changes nothing (only attachments may then change).
 */
export function rewriteMessage(
  message: ChatMessage,
  rewrite: Rewrite,
  options: { attachments: AttachmentPolicy; participantName: ((name: string) => string) | null; active: boolean },
): ChatMessage {
  if (!options.active && (options.attachments === 'keep' || !Array.isArray(message.content))) return message;
  const fields = message as unknown as Record<string, unknown>;
  let out: Record<string, unknown> | null = null;
  for (const key of Object.keys(fields)) {
    const v = fields[key];
    let w: unknown;
    if (key === 'role' || key === 'tool_call_id') continue;
    if (key === 'name' && typeof v === 'string') {
      if (TOOL_ROLES.has(message.role) || !options.active) continue;
      w = options.participantName ? options.participantName(v) : rewriteText(v, rewrite);
    } else {
      w = options.active ? rewriteRecord(v, rewrite, options.attachments) : rewriteRecord(v, (t) => t, options.attachments);
    }
    if (w === v) continue;
    out ??= { ...fields };
    out[key] = w;
  }
  return (out as unknown as ChatMessage | null) ?? message;
}

export function redactMessages<T extends ChatMessage>(
  messages: readonly T[],
  detectors: readonly Detector[],
  options: RedactOptions = {},
): T[] {
  return messages.map((m) => redactMessage(m, detectors, options) as T);
}

/** When the live turn is redacted before it goes to the engine too (what is stored is always redacted). */
export type RedactUpstreamPolicy = 'never' | 'remote' | 'always';
export type UpstreamKind = 'local' | 'remote';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1', '[::1]']);

/** An upstream on this machine (a loopback address) is local; any other host is remote. */
export function upstreamKindOf(url: string): UpstreamKind {
  try {
    const host = new URL(url).hostname.toLowerCase();
    return LOOPBACK_HOSTS.has(host) || host.startsWith('127.') || host.endsWith('.localhost') ? 'local' : 'remote';
  } catch {
    return 'remote';
  }
}

/**
 * Whether to redact what is sent to this upstream. The kind comes from the router when it knows it
 * (a configured upstream kind); otherwise from the URL: loopback is local.
 */
export function shouldRedactUpstream(policy: RedactUpstreamPolicy, upstream: { kind?: UpstreamKind | undefined; url: string }): boolean {
  if (policy === 'always') return true;
  if (policy === 'never') return false;
  return (upstream.kind ?? upstreamKindOf(upstream.url)) === 'remote';
}
