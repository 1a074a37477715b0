import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, configFromEnv } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';

function home(config?: unknown): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-config-'));
  if (config !== undefined) writeFileSync(join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  return dir;
}

test('defaults bind the daemon to loopback and the state lives under CS_LLM_HOME', () => {
  const dir = home();
  const { config, paths, file } = loadConfig({ env: { CS_LLM_HOME: dir } });
  assert.equal(config.daemon.host, '127.0.0.1');
  assert.equal(config.daemon.port, 8080);
  assert.equal(file, null);
  assert.equal(paths.dbFile, join(dir, 'state', 'cs-llm.db'));
});

test('file < environment < flags, each later source winning', () => {
  const dir = home({ daemon: { port: 9000, host: '127.0.0.2' }, engine: { port: 8001 } });
  const { config, file } = loadConfig({
    env: { CS_LLM_HOME: dir, CS_LLM_DAEMON_PORT: '9001', CS_LLM_ENGINE_PULL_POLICY: 'never' },
    flags: { daemon: { port: 9002 } },
  });
  assert.equal(file, join(dir, 'config.json'));
  assert.equal(config.daemon.port, 9002);
  assert.equal(config.daemon.host, '127.0.0.2');
  assert.equal(config.engine.port, 8001);
  assert.equal(config.engine.pullPolicy, 'never');
});

test('a bad field in the config file is reported with the file, the field and the expectation', () => {
  const dir = home({ daemon: { port: 'eighty' } });
  assert.throws(
    () => loadConfig({ env: { CS_LLM_HOME: dir } }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes(join(dir, 'config.json')) &&
      err.message.includes('daemon.port') &&
      /expected number/.test(err.message) &&
      Boolean(err.next),
  );
});

test('a misspelt field is refused rather than ignored', () => {
  const dir = home({ daemon: { prot: 1 } });
  assert.throws(() => loadConfig({ env: { CS_LLM_HOME: dir } }), /daemon/);
});

test('broken JSON names the file and says how to recover', () => {
  const dir = home('{ "daemon": ');
  assert.throws(
    () => loadConfig({ env: { CS_LLM_HOME: dir } }),
    (err: unknown) => err instanceof ConfigError && err.message.includes('not valid JSON') && /move it away/.test(err.next ?? ''),
  );
});

test('an invalid environment value names the environment as the source', () => {
  const dir = home();
  assert.throws(() => loadConfig({ env: { CS_LLM_HOME: dir, CS_LLM_STORE_SYNCHRONOUS: 'SOMETIMES' } }), /environment/);
});

test('environment names map to camelCase fields and JSON values', () => {
  assert.deepEqual(configFromEnv({ CS_LLM_ENGINE_GPU_MEMORY_UTILIZATION: '0.85', CS_LLM_HOME: '/x', OTHER: '1' }), {
    engine: { gpuMemoryUtilization: 0.85 },
  });
});
