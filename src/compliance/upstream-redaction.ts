import type { Config } from '../core/config.js';
import type { ChatMessage } from '../core/messages.js';
import { buildDetectors, type Detector } from './detectors.js';
import { Masker } from './masking.js';
import { redactMessages, shouldRedactUpstream, type UpstreamKind } from './redact.js';

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
  let parsed: { messages?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as { messages?: unknown };
  } catch {
    return body;
  }
  if (!Array.isArray(parsed.messages)) return body;
  const messages = parsed.messages as ChatMessage[];
  if (mask) {
    const m = masker ?? maskerFor(config);
    return Buffer.from(JSON.stringify({ ...parsed, messages: messages.map((message) => m.maskMessage(message)) }));
  }
  return Buffer.from(JSON.stringify({ ...parsed, messages: redactMessages(messages, detectors, { attachments: 'keep' }) }));
}
