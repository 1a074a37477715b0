/*
 * Encryption of stored message contents: AES-256-GCM, a fresh 96-bit nonce per value, the row's identity
 * (session id, seq, field) as additional data so a value copied into another row does not decrypt.
 * Stored value: version byte 1 | nonce (12) | tag (16) | ciphertext.
 */

import { createCipheriv, createDecipheriv, createHash, randomBytes, randomFillSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../core/errors.js';

const VERSION = 1;
const NONCE = 12;
const TAG = 16;

export interface ContentCipher {
  /** A short hash of the key, stored with every row it encrypted; never the key itself. */
  readonly keyId: string;
  encrypt(plain: string, context: string): Buffer;
  decrypt(blob: Uint8Array, context: string): string;
}

// Nonces come from a pool of random bytes filled 512 at a time: randomBytes(12) per value costs about 2 us,
// as much as the encryption itself. Each nonce is still 96 random bits, used once.
const noncePool = Buffer.alloc(NONCE * 512);
let noncePoolAt = noncePool.length;

function nextNonce(): Buffer {
  if (noncePoolAt >= noncePool.length) {
    randomFillSync(noncePool);
    noncePoolAt = 0;
  }
  const nonce = Buffer.from(noncePool.subarray(noncePoolAt, noncePoolAt + NONCE));
  noncePoolAt += NONCE;
  return nonce;
}

export function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('cs-llm store key id\0').update(key).digest('hex').slice(0, 12);
}

export function createCipher(key: Buffer): ContentCipher {
  if (key.length !== 32) throw new Error('an AES-256 key is 32 bytes');
  const keyId = keyIdOf(key);
  return {
    keyId,
    encrypt(plain, context) {
      const nonce = nextNonce();
      const cipher = createCipheriv('aes-256-gcm', key, nonce);
      cipher.setAAD(Buffer.from(context, 'utf8'));
      const body = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
      return Buffer.concat([Buffer.of(VERSION), nonce, cipher.getAuthTag(), body]);
    },
    decrypt(blob, context) {
      const data = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
      if (data.length < 1 + NONCE + TAG || data[0] !== VERSION) throw new Error('not a value this version of cs-llm encrypted');
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(1, 1 + NONCE));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(data.subarray(1 + NONCE, 1 + NONCE + TAG));
      return Buffer.concat([decipher.update(data.subarray(1 + NONCE + TAG)), decipher.final()]).toString('utf8');
    },
  };
}

/** A new random key as the base64 text a key file holds. */
export function newKeyText(): string {
  return `${randomBytes(32).toString('base64')}\n`;
}

/** Base64 of exactly 32 bytes (surrounding whitespace ignored); `source` names where it came from in errors. */
export function parseKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const key = /^[A-Za-z0-9+/=_-]+$/.test(trimmed)
    ? Buffer.from(trimmed, trimmed.includes('-') || trimmed.includes('_') ? 'base64url' : 'base64')
    : Buffer.alloc(0);
  if (key.length !== 32) {
    throw new ConfigError(
      `${source} does not hold an encryption key: expected base64 of 32 bytes, got ${key.length === 0 ? 'something else' : `${key.length} bytes`}`,
      {
        next: 'Create a key with: cs-llm store new-key --out /etc/cs-llm/store.key (or: head -c 32 /dev/urandom | base64).',
      },
    );
  }
  return key;
}

export function readKeyFile(file: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read encryption key file ${file}: ${(err as Error).message}`, {
      next: 'Check store.encryption.keyFile in the config and that this user may read the file.',
      cause: err,
    });
  }
  return parseKey(text, `key file ${file}`);
}

/** The key in force: CS_LLM_STORE_KEY (config store.key) wins over store.encryption.keyFile; null when neither is set. */
export function configuredKey(store: {
  key?: string | undefined;
  encryption?: { keyFile?: string | undefined } | undefined;
}): Buffer | null {
  if (store.key) return parseKey(store.key, 'CS_LLM_STORE_KEY (store.key)');
  if (store.encryption?.keyFile) return readKeyFile(store.encryption.keyFile);
  return null;
}
