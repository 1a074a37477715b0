import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { CHECK_NAMES } from '../../../src/doctor/checks.js';
import { freePort } from '../../helpers/ports.js';
import { scenarioDir } from '../../gpu/fixtures.js';

test('doctor --json prints exactly {"checks": [{name, status, detail, fix}]} and fails when the engine port is taken', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const busyPort = (server.address() as { port: number }).port;

  const result = await runCli(['doctor', '--json'], {
    env: {
      CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-doctor-cli-')),
      CS_LLM_ENGINE_PORT: String(busyPort),
      CS_LLM_DAEMON_PORT: String(await freePort()),
    },
  });
  assert.equal(result.exitCode, 4, String(result.stderr));
  const out = JSON.parse(String(result.stdout));
  assert.deepEqual(Object.keys(out), ['checks']);
  assert.deepEqual(
    out.checks.map((c: { name: string }) => c.name),
    [...CHECK_NAMES],
  );
  for (const check of out.checks) {
    assert.deepEqual(Object.keys(check), ['name', 'status', 'detail', 'fix']);
    assert.ok(['ok', 'warn', 'fail'].includes(check.status));
    assert.equal(typeof check.detail, 'string');
    assert.ok(check.fix === null || typeof check.fix === 'string');
    if (check.status === 'fail') assert.ok(check.fix, `${check.name} fails with a fix`);
  }
  const enginePort = out.checks.find((c: { name: string }) => c.name === 'engine-port');
  assert.equal(enginePort.status, 'fail');
  assert.equal(enginePort.detail, `engine port ${busyPort} is in use by another process on 127.0.0.1`);
  assert.match(enginePort.fix, /--port/);
  assert.equal(out.checks.find((c: { name: string }) => c.name === 'daemon-port').status, 'ok');
});

test('doctor without a terminal prints one plain line per check and what stops up', async (t) => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const busyPort = (server.address() as { port: number }).port;
  const result = await runCli(['doctor'], {
    env: {
      CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-doctor-cli-')),
      CS_LLM_DAEMON_PORT: String(busyPort),
      CS_LLM_ENGINE_PORT: String(await freePort()),
    },
  });
  assert.notEqual(result.exitCode, 0);
  const stdout = String(result.stdout);
  assert.match(stdout, /^ok {2}node {2}Node\.js \d+\.\d+\.\d+$/m);
  assert.match(stdout, new RegExp(`^fail  daemon-port  daemon port ${busyPort} is in use by another process on 127\\.0\\.0\\.1$`, 'm'));
  assert.match(stdout, /^fix daemon-port: Pick another port/m);
  assert.match(stdout, /^cs-llm up cannot run yet: .*daemon-port.* failed$/m);
});

test('doctor on a GPU box whose driver is broken exits 4 with the gpu check failing and its fix', async () => {
  const result = await runCli(['doctor', '--json'], {
    env: {
      CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-doctor-cli-')),
      CS_LLM_ENGINE_PORT: String(await freePort()),
      CS_LLM_DAEMON_PORT: String(await freePort()),
      PATH: `${scenarioDir('version-mismatch')}:${process.env.PATH}`,
    },
  });
  assert.equal(result.exitCode, 4, String(result.stdout));
  const out = JSON.parse(String(result.stdout)) as { checks: Array<{ name: string; status: string; detail: string; fix: string }> };
  const gpu = out.checks.find((c) => c.name === 'gpu')!;
  assert.equal(gpu.status, 'fail');
  assert.match(gpu.detail, /Driver\/library version mismatch/);
  assert.match(gpu.fix, /Reboot/);
});

test('without Docker, doctor fails the docker check but not up, except when the engine is vllm', async () => {
  const env = {
    CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-doctor-cli-')),
    CS_LLM_ENGINE_PORT: String(await freePort()),
    CS_LLM_DAEMON_PORT: String(await freePort()),
    DOCKER_HOST: `unix://${join(tmpdir(), 'cs-llm-no-docker.sock')}`,
  };
  const auto = await runCli(['doctor'], { env });
  const out = String(auto.stdout);
  assert.match(out, /^fail {2}docker {2}no Docker Engine socket at unix:\/\/.*cs-llm-no-docker\.sock$/m);
  assert.match(out, /^nothing stops cs-llm up; without Docker it runs the cpu engine as a local process \(vllm needs Docker\)$/m);
  assert.equal(auto.exitCode, 0, out);
  const vllm = await runCli(['doctor'], { env: { ...env, CS_LLM_ENGINE_KIND: 'vllm' } });
  assert.equal(vllm.exitCode, 4);
  assert.match(String(vllm.stdout), /^cs-llm up cannot run yet: docker failed$/m);
});
