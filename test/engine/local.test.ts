/*
 * Without a Docker engine, `up --engine sim` runs the simulator as a local process: the main job works on
 * any machine. DOCKER_HOST points at a socket that does not exist, so these tests never need dockerd.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { loadConfig } from '../../src/core/config.js';
import { EngineError } from '../../src/core/errors.js';
import { processStamp } from '../../src/core/process-identity.js';
import { isAlive, localPaths, readLocalState } from '../../src/engine/local.js';
import { engineDown } from '../../src/engine/manage.js';
import { up } from '../../src/engine/up.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';

const NO_DOCKER = 'unix:///nonexistent/cs-llm-test-docker.sock';

function home(t: TestContext): { dir: string; env: NodeJS.ProcessEnv } {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-local-'));
  const env = { ...process.env, CS_LLM_HOME: dir, DOCKER_HOST: NO_DOCKER };
  t.after(async () => {
    await engineDown({ paths: loadConfig({ env }).paths, env, purge: true });
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, env };
}

test('without a Docker engine, the CLI runs the simulator as a local process that status, logs and down can see', async (t) => {
  const { dir, env } = home(t);
  const port = await freePort();
  const cliEnv = { CS_LLM_HOME: dir, DOCKER_HOST: NO_DOCKER };
  // Only the engine here: the daemon in front of it is tested with the container engine.
  const run = await runCli(['up', '--engine', 'sim', '--port', String(port), '--no-daemon'], { env: cliEnv, timeoutMs: 120_000 });
  assert.equal(run.exitCode, 0, String(run.stderr));
  assert.match(String(run.stdout), /engine serving: .* on the sim engine \(local process \d+\)/);
  assert.match(String(run.stdout), new RegExp(`engine endpoint: http://127\\.0\\.0\\.1:${port}/v1`));
  assert.match(String(run.stderr), /no Docker engine .*: running the simulator as a local process/);

  const stateDir = loadConfig({ env }).paths.stateDir;
  const state = readLocalState(localPaths(stateDir));
  assert.ok(state && isAlive(state.pid));
  // The engine port is no way around the daemon: /v1/* wants the engine's key, kept 0600 in the state directory.
  const keyFile = join(stateDir, 'engine-api-key');
  assert.match(String(run.stdout), new RegExp(`API key in ${keyFile}`));
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const key = readFileSync(keyFile, 'utf8').trim();
  assert.equal((await fetch(`http://127.0.0.1:${port}/v1/models`)).status, 401);
  const wrong = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: 'Bearer csk_engine_not-the-key' } });
  assert.equal(wrong.status, 401);
  const models = (await (await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).json()) as {
    data: Array<{ id: string }>;
  };
  assert.deepEqual(
    models.data.map((m) => m.id),
    [state.servedName],
  );
  // The key is in the process's environment, not on its command line (any local user can read that).
  const engineCommandLine = readFileSync(`/proc/${state.pid}/cmdline`, 'utf8');
  assert.ok(engineCommandLine.length > 0 && !engineCommandLine.includes(key));

  const status = await runCli(['status', '--json'], { env: cliEnv });
  const report = JSON.parse(String(status.stdout)) as {
    engines: Array<{ mode: string; state: string; health: string; pid: number }>;
    dockerProblem: string;
  };
  assert.deepEqual(
    report.engines.map((e) => [e.mode, e.state, e.health, e.pid]),
    [['process', 'running', 'ok', state.pid]],
  );
  assert.match(report.dockerProblem, /no Docker Engine socket/);

  const logs = await runCli(['logs', '--tail', '100'], { env: cliEnv });
  assert.match(String(logs.stdout), /Uvicorn running on http:\/\/127\.0\.0\.1:/);

  const down = await runCli(['down'], { env: cliEnv });
  assert.match(String(down.stdout), new RegExp(`stopped engine process ${state.pid}`));
  assert.equal(isAlive(state.pid), false);
  assert.equal(existsSync(keyFile), false, 'the key goes with its engine');
  assert.equal(existsSync(localPaths(loadConfig({ env }).paths.stateDir).stateFile), false);
});

test('a second up reuses the running process; a simulator that crashes at start leaves no process behind', async (t) => {
  const { env } = home(t);
  const port = await freePort();
  const loaded = loadConfig({ env, flags: { engine: { kind: 'sim', port } } });
  const first = await up({ engine: loaded.config.engine, paths: loaded.paths, env });
  const again = await up({ engine: loaded.config.engine, paths: loaded.paths, env });
  assert.equal(first.mode, 'process');
  assert.equal(again.reused, true);
  assert.equal(again.pid, first.pid);

  const crash =
    "ValueError: The model's max seq len (8192) is larger than the maximum number of tokens that can be stored in KV cache (3664).";
  await assert.rejects(
    up({ engine: loaded.config.engine, paths: loaded.paths, env, extraEnv: { SIM_CRASH_AT_START: crash } }),
    (err: unknown) => {
      assert.ok(err instanceof EngineError, String(err));
      assert.match(
        err.message,
        /simulator process \d+ exited with code 1 while (starting|loading): the context length 8192 does not fit the KV cache/,
      );
      assert.match(err.next!, /--context 3664/);
      return true;
    },
  );
  // The changed configuration replaced the first process, and the failed one was cleaned up.
  assert.equal(isAlive(first.pid!), false);
  assert.equal(readLocalState(localPaths(loaded.paths.stateDir)), null);
});

test("up refuses before starting anything when the chat daemon's port is taken by another process", async (t) => {
  const { dir, env } = home(t);
  const blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const daemonPort = (blocker.address() as { port: number }).port;
  const run = await runCli(['up', '--engine', 'sim', '--port', String(await freePort())], {
    env: { CS_LLM_HOME: dir, DOCKER_HOST: NO_DOCKER, CS_LLM_DAEMON_PORT: String(daemonPort) },
  });
  assert.equal(run.exitCode, 8, String(run.stderr));
  assert.match(
    String(run.stderr),
    new RegExp(`error: the chat daemon's port ${daemonPort} on 127\\.0\\.0\\.1 is in use by another process`),
  );
  assert.match(String(run.stderr), /--no-daemon/);
  assert.equal(readLocalState(localPaths(loadConfig({ env }).paths.stateDir)), null);
});

test('status and down leave alone a process that holds the pid of a local engine that is gone', async (t) => {
  const { dir, env } = home(t);
  const stranger = spawn('sleep', ['300'], { stdio: 'ignore' });
  await once(stranger, 'spawn');
  t.after(() => stranger.kill('SIGKILL'));
  const paths = localPaths(loadConfig({ env }).paths.stateDir);
  mkdirSync(loadConfig({ env }).paths.stateDir, { recursive: true });
  const stamp = processStamp(stranger.pid!)!;
  const base = { port: 1, model: 'm', servedName: 'm', configHash: 'x', startedAt: '2026-01-01T00:00:00.000Z', logFile: paths.logFile };
  const stale = [
    // this version's file: the start time differs
    { ...base, pid: stranger.pid, command: ['sleep', '300'], startTicks: String(Number(stamp.startTicks) - 3), bootId: stamp.bootId },
    // an older file without a start time: the command line differs from the one recorded
    { ...base, pid: stranger.pid, command: [process.execPath, 'dist/sim/main.js'] },
  ];
  const cliEnv = { CS_LLM_HOME: dir, DOCKER_HOST: NO_DOCKER };
  for (const state of stale) {
    writeFileSync(paths.stateFile, JSON.stringify(state));
    const status = await runCli(['status', '--json'], { env: cliEnv });
    const report = JSON.parse(String(status.stdout)) as { engines: Array<{ state: string }> };
    assert.deepEqual(
      report.engines.map((e) => e.state),
      ['exited'],
    );
    const down = await runCli(['down'], { env: cliEnv });
    assert.equal(down.exitCode, 0, String(down.stderr));
    assert.equal(existsSync(paths.stateFile), false);
    assert.equal(stranger.exitCode, null, 'the unrelated process was not signalled');
    assert.equal(stranger.signalCode, null);
  }
});

test('a local engine process gets only the environment it needs: no store key, no upstream or Hub credentials, and its own key', async (t) => {
  const { env } = home(t);
  const port = await freePort();
  const secrets = {
    CS_LLM_STORE_KEY: Buffer.alloc(32, 7).toString('base64'),
    OPENAI_API_KEY: 'sk-upstream-secret-0000000000',
    HF_TOKEN: 'hf_test-not-a-real-token',
    AWS_SECRET_ACCESS_KEY: 'aws-secret',
  };
  // In up's own environment, as when an operator exports them in the shell that runs cs-llm up.
  const saved = { ...process.env };
  Object.assign(process.env, secrets, { LC_ALL: 'C.UTF-8' });
  t.after(() => {
    for (const name of [...Object.keys(secrets), 'LC_ALL']) delete process.env[name];
    Object.assign(process.env, saved);
  });
  const withSecrets = { ...env, ...secrets, LC_ALL: 'C.UTF-8' };
  const loaded = loadConfig({ env: withSecrets, flags: { engine: { kind: 'sim', port } } });
  const result = await up({
    engine: loaded.config.engine,
    paths: loaded.paths,
    env: withSecrets,
    extraEnv: { SIM_TTFT_MS: '1', VLLM_API_KEY: 'csk_engine_shadow' },
  });
  assert.equal(result.mode, 'process');
  const seen = Object.fromEntries(
    readFileSync(`/proc/${result.pid}/environ`, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );
  for (const name of Object.keys(secrets)) assert.equal(seen[name], undefined, name);
  assert.equal(seen.VLLM_API_KEY, readFileSync(join(loaded.paths.stateDir, 'engine-api-key'), 'utf8').trim());
  assert.equal(seen.SIM_TTFT_MS, '1');
  assert.equal(seen.LC_ALL, 'C.UTF-8');
  assert.ok(seen.PATH);
});
