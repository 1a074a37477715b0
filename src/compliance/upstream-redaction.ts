import type { Config } from '../core/config.js';
import { buildDetectors, type Detector } from './detectors.js';
import { redactMessages, shouldRedactUpstream, type UpstreamKind } from './redact.js';

const detectorsByConfig = new WeakMap<Config, Detector[]>();

function detectorsOf(config: Config): Detector[] {
  let detectors = detectorsByConfig.get(config);
  if (!detectors) {
    const r = config.store.redaction;
    detectors = r.enabled ? buildDetectors(r) : [];
    detectorsByConfig.set(config, detectors);
  }
  return detectors;
}

/**
 * The request body as it goes to one upstream: unchanged (the same Buffer) unless store.redactUpstream asks
 * for redaction for this upstream's kind ('always', or 'remote' for a remote one), then with every message
 * redacted by the same detectors as the store. Called where the body for an upstream is built.
 */
export function bodyForUpstream(config: Config, upstream: { kind?: UpstreamKind | undefined; url: string }, body: Buffer): Buffer {
  if (!shouldRedactUpstream(config.store.redactUpstream, upstream)) return body;
  const detectors = detectorsOf(config);
  if (detectors.length === 0) return body;
  let parsed: { messages?: unknown };
  try {
    parsed = JSON.parse(body.toString('utf8')) as { messages?: unknown };
  } catch {
    return body;
  }
  if (!Array.isArray(parsed.messages)) return body;
  return Buffer.from(JSON.stringify({ ...parsed, messages: redactMessages(parsed.messages, detectors, { attachments: 'keep' }) }));
}
