import { profileFor, type Config } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { buildDetectors, type Detector } from '../compliance/detectors.js';
import { configuredKey, createCipher, type ContentCipher } from './crypto.js';
import type { ContentProtection } from './sessions.js';
import { openStore, storeFile, type Store } from './store.js';

/** The detectors the config asks for (store.redaction); [] when redaction is off. */
export function detectorsFor(config: Config): Detector[] {
  const r = config.store.redaction;
  if (!r.enabled) return [];
  try {
    return buildDetectors(r);
  } catch (err) {
    throw new ConfigError(`store.redaction.custom: ${(err as Error).message}`, {
      next: 'Fix the detector in the config file, or remove it.',
    });
  }
}

/** The cipher for the configured key (CS_LLM_STORE_KEY or store.encryption.keyFile), or null. */
export function cipherFor(config: Config): ContentCipher | null {
  const key = configuredKey(config.store);
  return key ? createCipher(key) : null;
}

/** Redaction, encryption and retention as the config sets them: what every path that stores messages uses. */
export function protectionFor(config: Config, options: { onScrubError?: (err: unknown) => void } = {}): ContentProtection {
  // Asked on every append: resolved once per profile name.
  const retention = new Map<string, number | null>();
  // A name that is no profile gets the defaults (profileFor), whose retention is null.
  const anyRetention = Object.keys(config.profiles).some((name) => profileFor(config, name).retentionSeconds !== null);
  return {
    detectors: detectorsFor(config),
    attachments: config.store.attachments,
    cipher: cipherFor(config),
    retentionMs: (profile) => {
      let ms = retention.get(profile);
      if (ms === undefined) {
        const seconds = profileFor(config, profile).retentionSeconds;
        ms = seconds === null ? null : seconds * 1000;
        retention.set(profile, ms);
      }
      return ms;
    },
    anyRetention,
    ...(options.onScrubError ? { onScrubError: options.onScrubError } : {}),
  };
}

/** The store in force (store.path or --db), opened with the config's protection. */
export function openConfiguredStore(config: Config, paths: { dbFile: string }): Promise<Store> {
  return openStore({
    file: storeFile(config, paths),
    synchronous: config.store.synchronous,
    busyTimeoutMs: config.store.busyTimeoutMs,
    protection: protectionFor(config),
  });
}
