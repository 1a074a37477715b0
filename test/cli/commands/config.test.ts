import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';

test('config show prints the merged configuration with secrets hidden', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-config-show-'));
  const key = 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=';
  const result = await runCli(['config', 'show'], {
    env: { CS_LLM_HOME: home, CS_LLM_STORE_KEY: key, CS_LLM_DAEMON_UPSTREAM_API_KEY: 'engine-secret-123', CS_LLM_DAEMON_PORT: '9123' },
  });
  assert.equal(result.exitCode, 0, String(result.stderr));
  const shown = JSON.parse(String(result.stdout)) as {
    config: { daemon: { port: number; upstreamApiKey: string }; store: { key: string } };
  };
  assert.equal(shown.config.daemon.port, 9123);
  assert.equal(shown.config.daemon.upstreamApiKey, '[set, hidden]');
  assert.equal(shown.config.store.key, '[set, hidden]');
  assert.doesNotMatch(String(result.stdout), /engine-secret-123|c2VjcmV0/);
});

test('a bad integer flag is a usage error with exit code 2, not a bug report', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-config-show-'));
  const result = await runCli(['logs', '--tail', 'many'], { env: { CS_LLM_HOME: home } });
  assert.equal(result.exitCode, 2);
  assert.match(String(result.stderr), /--tail must be a whole number \(0 or more\), got "many"/);
  assert.doesNotMatch(String(result.stderr), /bug in cs-llm|at .*\.ts:\d+/);
});
