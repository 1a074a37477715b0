/* Bad input to up/status/logs/down: a clear error with the next step and the usage exit code, never a stack. */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCli } from '../../helpers/cli.js';
import { scenarioDir } from '../../gpu/fixtures.js';

function home(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-engine-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('up refuses an unknown engine, GPU selector or engine variable with exit code 2 and the fix', async (t) => {
  const env = { CS_LLM_HOME: home(t), DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
  const engine = await runCli(['up', '--engine', 'llamacpp'], { env });
  assert.equal(engine.exitCode, 2);
  assert.match(String(engine.stderr), /error: --engine must be auto, vllm, cpu or sim, got "llamacpp"\nnext: .*--engine sim/);
  const gpus = await runCli(['up', '--engine', 'sim', '--gpus', 'first'], { env });
  assert.equal(gpus.exitCode, 2);
  assert.match(String(gpus.stderr), /--gpus must be "all", "none" or GPU indexes/);
  const variable = await runCli(['up', '--engine', 'sim', '--engine-env', 'not a pair'], { env });
  assert.equal(variable.exitCode, 2);
  assert.match(String(variable.stderr), /--engine-env "not a pair" is not KEY=VALUE/);
  const token = await runCli(['up', '--engine', 'sim', '--engine-env', 'HF_TOKEN=hf_abcdefghijkl'], { env });
  assert.equal(token.exitCode, 2);
  assert.doesNotMatch(String(token.stderr), /hf_abcdefghijkl/);
  // The engine's key is up's to make (the daemon gets the same one): it cannot be set or shadowed by hand.
  const key = await runCli(['up', '--engine', 'sim', '--engine-env', 'VLLM_API_KEY=csk_mine'], { env });
  assert.equal(key.exitCode, 2);
  assert.match(String(key.stderr), /error: the engine's API key is made by cs-llm up.*\nnext: Leave VLLM_API_KEY out/);
  for (const run of [engine, gpus, variable, token, key]) assert.doesNotMatch(String(run.stderr), /\n\s+at /);
});

test('the vllm engine without a usable GPU says so and points at the CPU engine and the simulator, once', async (t) => {
  // An empty PATH directory first and nothing else: no nvidia-smi anywhere.
  const env = { CS_LLM_HOME: home(t), PATH: '/nonexistent', DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
  const run = await runCli(['up', '--engine', 'vllm'], { env });
  assert.equal(run.exitCode, 4, String(run.stderr));
  assert.match(String(run.stderr), /error: no usable NVIDIA GPU: nvidia-smi was not found/);
  assert.match(String(run.stderr), /--engine cpu/);
  assert.match(String(run.stderr), /--engine sim/);
  assert.equal(String(run.stderr).match(/[Ww]ithout a GPU/g)?.length, 1, String(run.stderr));
});

test('status, logs and down with nothing running are calm about it', async (t) => {
  const env = { CS_LLM_HOME: home(t), DOCKER_HOST: 'unix:///nonexistent/docker.sock' };
  const status = await runCli(['status'], { env });
  assert.equal(status.exitCode, 0);
  assert.match(String(status.stdout), /^no engine \(no Docker engine: .*\); start one with cs-llm up$/m);
  const down = await runCli(['down'], { env });
  assert.equal(down.exitCode, 0);
  assert.match(String(down.stdout), /no engine to stop/);
  const logs = await runCli(['logs'], { env });
  assert.equal(logs.exitCode, 9);
  assert.match(String(logs.stderr), /error: no engine to show logs of .*\nnext: Start one with cs-llm up/);
});

test('up --engine auto on a host whose NVIDIA driver is broken refuses, naming the problem; --engine cpu goes on', async (t) => {
  const env = {
    CS_LLM_HOME: home(t),
    PATH: `${scenarioDir('driver-failure')}:${process.env.PATH}`,
    DOCKER_HOST: 'unix:///nonexistent/docker.sock',
  };
  // Were it to start anything (it must not), this stops it.
  t.after(() => runCli(['down'], { env }));
  const auto = await runCli(['up', '--no-daemon'], { env, timeoutMs: 120_000 });
  assert.equal(auto.exitCode, 4, String(auto.stderr));
  assert.match(String(auto.stderr), /error: .*NVIDIA driver.*couldn't communicate with the NVIDIA driver/);
  assert.match(String(auto.stderr), /next: .*modprobe nvidia.*cs-llm up --engine cpu/);
  assert.doesNotMatch(String(auto.stderr), /\n\s+at /);
  // An explicit cpu engine is not stopped by the driver: planning goes on (here to a model file that is not there).
  const cpu = await runCli(['up', '--engine', 'cpu', '--model', '/nonexistent/model.gguf', '--no-daemon'], { env });
  assert.equal(cpu.exitCode, 2, String(cpu.stderr));
  assert.match(String(cpu.stderr), /nonexistent\/model\.gguf/);
  assert.doesNotMatch(String(cpu.stderr), /NVIDIA driver/);
});
