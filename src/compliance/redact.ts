import type { ChatMessage } from '../core/messages.js';
import { redactText, type Detector } from './detectors.js';

/**
 * Redaction of whole chat messages: the text content, the text of content parts, and the arguments of tool
 * calls (a model often copies a phone number into a lookup call). Roles, ids and tool names are kept.
 * Returns the same object when nothing changed, so the common case allocates nothing.
 */
export function redactMessage(message: ChatMessage, detectors: readonly Detector[]): ChatMessage {
  if (detectors.length === 0) return message;
  let out: ChatMessage = message;
  const content = message.content;
  if (typeof content === 'string') {
    const redacted = redactText(content, detectors);
    if (redacted !== content) out = { ...out, content: redacted };
  } else if (Array.isArray(content)) {
    let changed = false;
    const parts = content.map((part) => {
      const text = (part as { text?: unknown } | null)?.text;
      if (typeof text !== 'string') return part;
      const redacted = redactText(text, detectors);
      if (redacted === text) return part;
      changed = true;
      return { ...(part as object), text: redacted };
    });
    if (changed) out = { ...out, content: parts };
  }
  if (Array.isArray(message.tool_calls) && message.tool_calls.length > 0) {
    let changed = false;
    const calls = message.tool_calls.map((call) => {
      const fn = (call as { function?: { arguments?: unknown } } | null)?.function;
      if (!fn || typeof fn.arguments !== 'string') return call;
      const redacted = redactText(fn.arguments, detectors);
      if (redacted === fn.arguments) return call;
      changed = true;
      return { ...(call as object), function: { ...fn, arguments: redacted } };
    });
    if (changed) out = { ...out, tool_calls: calls };
  }
  return out;
}

export function redactMessages<T extends ChatMessage>(messages: readonly T[], detectors: readonly Detector[]): T[] {
  return messages.map((m) => redactMessage(m, detectors) as T);
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
