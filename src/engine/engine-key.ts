import { createHash, randomBytes } from 'node:crypto';
import { closeSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ensurePrivateDir } from '../core/paths.js';

// The engine's API key: without it, anything that reaches the engine port (any local process, a DNS-rebinding
// page) would skip the daemon's keys, Host allowlist, redaction and audit log. `up` makes a random key for each
// engine it creates, keeps it 0600 in the state directory, gives it to the engine (VLLM_API_KEY: vLLM, the CPU
// engine and the simulator all read it) and to the daemon as its upstream key. A reused engine keeps its key.

export const ENGINE_KEY_FILE = 'engine-api-key';
/** The `csk_` prefix is one the log redaction already hides (src/core/log.ts). */
const PREFIX = 'csk_engine_';

export function engineKeyFile(stateDir: string): string {
  return join(stateDir, ENGINE_KEY_FILE);
}

/** A short public fingerprint of a key (a label on the container), to tell whether a running engine has it. */
export function engineKeyId(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16);
}

export function newEngineKey(): string {
  return PREFIX + randomBytes(32).toString('base64url');
}

/** The key on file, or null when there is none (or it is unreadable or empty). */
export function readEngineKey(stateDir: string): string | null {
  try {
    const key = readFileSync(engineKeyFile(stateDir), 'utf8').trim();
    return key === '' ? null : key;
  } catch {
    return null;
  }
}

/** When the key on file was written (ms), or null: a daemon started before that has another key. */
export function engineKeyWrittenAt(stateDir: string): number | null {
  try {
    return statSync(engineKeyFile(stateDir)).mtimeMs;
  } catch {
    return null;
  }
}

/** Writes the key 0600 from its creation (never readable by others, even for a moment), then renames it in place. */
export function writeEngineKey(stateDir: string, key: string): string {
  ensurePrivateDir(stateDir);
  const file = engineKeyFile(stateDir);
  const tmp = `${file}.${process.pid}.tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, `${key}\n`);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  return file;
}
