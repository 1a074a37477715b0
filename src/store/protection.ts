import { profileFor, type Config } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { buildDetectors, type Detector } from '../compliance/detectors.js';
import { configuredKey, createCipher, type ContentCipher } from './crypto.js';
import type { SqliteDatabase } from './database.js';
import { missingKeyError, type ContentProtection } from './sessions.js';
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
  return {
    detectors: detectorsFor(config),
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
    ...(options.onScrubError ? { onScrubError: options.onScrubError } : {}),
  };
}

/** The store in force (store.path or --db), opened with the config's protection. */
export function openConfiguredStore(config: Config, paths: { dbFile: string }): Store {
  return openStore({
    file: storeFile(config, paths),
    synchronous: config.store.synchronous,
    busyTimeoutMs: config.store.busyTimeoutMs,
    protection: protectionFor(config),
  });
}

/**
 * Refuses (with the fix) when the database holds messages encrypted with a key that is not configured: a
 * daemon would otherwise start and fail on the first turn of such a session. Keys whose rows are all gone
 * are marked retired on the way.
 */
export function requireContentKeys(db: SqliteDatabase, cipher: ContentCipher | null, now = Date.now()): void {
  const active = db.prepare<[], { id: string }>('SELECT id FROM content_keys WHERE retired_at IS NULL').all();
  const stillUsed = db.prepare<[string], { n: number }>('SELECT EXISTS (SELECT 1 FROM messages WHERE key_id = ?) AS n');
  const retire = db.prepare('UPDATE content_keys SET retired_at = ? WHERE id = ?');
  for (const { id } of active) {
    if (cipher && id === cipher.keyId) continue;
    if (stillUsed.get(id)!.n === 1) throw missingKeyError(id, cipher);
    retire.run(now, id);
  }
}
