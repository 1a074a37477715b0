import type { Config } from '../core/config.js';
import type { ChatMessage } from '../core/messages.js';
import { buildDetectors, redactText, type Detector } from './detectors.js';
import { Masker } from './masking.js';
import { rewriteRecord, type Rewrite } from './records.js';
import { redactMessages, shouldRedactUpstream, type UpstreamKind } from './redact.js';

/**
 * Request fields beside the messages that clients fill with who the customer is: OpenAI asks for a stable id
 * in `user` (now `safety_identifier`), and many send an email or a phone; `metadata` holds whatever the client
 * tags a request with. They leave masked or redacted with the messages. (The operator's own `tools` are not
 * customer data and go as configured.)
 */
const IDENTITY_FIELDS = ['user', 'safety_identifier', 'metadata'] as const;

function withIdentityRewritten(body: Record<string, unknown>, rewrite: Rewrite): Record<string, unknown> {
  let out = body;
  for (const field of IDENTITY_FIELDS) {
    if (!Object.hasOwn(body, field)) continue;
    const rewritten = rewriteRecord(body[field], rewrite, 'keep');
    if (rewritten !== body[field]) {
      if (out === body) out = { ...body };
      out[field] = rewritten;
    }
  }
  return out;
}

const detectorsByConfig = new WeakMap<Config, Detector[]>();
const maskDetectorsByConfig = new WeakMap<Config, Detector[]>();

function detectorsOf(config: Config): Detector[] {
  let detectors = detectorsByConfig.get(config);
  if (!detectors) {
    const r = config.store.redaction;
    detectors = r.enabled ? buildDetectors(r) : [];
    detectorsByConfig.set(config, detectors);
  }
  return detectors;
}

/** The detectors masking uses: those store.redaction selects, also when stored text is not redacted. */
function maskDetectorsOf(config: Config): Detector[] {
  let detectors = maskDetectorsByConfig.get(config);
  if (!detectors) {
    detectors = buildDetectors(config.store.redaction);
    maskDetectorsByConfig.set(config, detectors);
  }
  return detectors;
}

/** A masker for one client request to masked upstreams (every round of it shares the placeholders). */
export function maskerFor(config: Config): Masker {
  return new Masker(maskDetectorsOf(config));
}

export interface UpstreamTarget {
  kind?: UpstreamKind | undefined;
  url: string;
  /** upstreams[].mask: personal data leaves as placeholders, restored in the reply. */
  mask?: boolean | undefined;
}

/**
 * The request body as it goes to one upstream. A masked upstream gets every message masked (`masker` keeps
 * the values to restore the reply with; a throwaway one when none is given, as for the shadow). Otherwise
 * unchanged (the same Buffer) unless store.redactUpstream asks for redaction for this upstream's kind
 * ('always', or 'remote' for a remote one), then with every message redacted by the same detectors as the
 * store. Called where the body for an upstream is built.
 */
export function bodyForUpstream(config: Config, upstream: UpstreamTarget, body: Buffer, masker?: Masker): Buffer {
  const mask = upstream.mask === true;
  if (!mask && !shouldRedactUpstream(config.store.redactUpstream, upstream)) return body;
  const detectors = mask ? maskDetectorsOf(config) : detectorsOf(config);
  if (detectors.length === 0 && !mask) return body;
  let parsed: Record<string, unknown> & { messages?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
  } catch {
    return body;
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray(parsed.messages)) return body;
  const messages = parsed.messages as ChatMessage[];
  if (mask) {
    const m = masker ?? maskerFor(config);
    const masked = { ...parsed, messages: messages.map((message) => m.maskMessage(message)) };
    return Buffer.from(JSON.stringify(withIdentityRewritten(masked, (t) => m.maskText(t))));
  }
  const redacted = { ...parsed, messages: redactMessages(messages, detectors, { attachments: 'keep' }) };
  return Buffer.from(JSON.stringify(withIdentityRewritten(redacted, (t) => redactText(t, detectors))));
}
