import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { redactSecrets } from '../../src/core/log.js';
import { engineKeyFile, engineKeyId, newEngineKey, readEngineKey, writeEngineKey } from '../../src/engine/engine-key.js';

test('an engine key is random, kept 0600 in a 0700 state directory, and hidden by the log redaction', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const stateDir = join(dir, 'state');
  const key = newEngineKey();
  assert.match(key, /^csk_engine_[A-Za-z0-9_-]{43}$/);
  assert.notEqual(newEngineKey(), key);
  assert.equal(readEngineKey(stateDir), null);
  // Even a permissive umask cannot open it up: the file is created 0600.
  const umask = process.umask(0);
  try {
    writeEngineKey(stateDir, key);
  } finally {
    process.umask(umask);
  }
  assert.equal(statSync(engineKeyFile(stateDir)).mode & 0o777, 0o600);
  assert.equal(statSync(stateDir).mode & 0o777, 0o700);
  assert.equal(readEngineKey(stateDir), key);
  const next = newEngineKey();
  writeEngineKey(stateDir, next);
  assert.equal(readFileSync(engineKeyFile(stateDir), 'utf8'), `${next}\n`);
  assert.equal(engineKeyId(next), engineKeyId(next));
  assert.notEqual(engineKeyId(next), engineKeyId(key));
  assert.ok(!engineKeyId(next).includes(next.slice(11, 20)));
  assert.doesNotMatch(redactSecrets(`VLLM_API_KEY=${next} and ${next}`), new RegExp(next.slice(11)));
});
