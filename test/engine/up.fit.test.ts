/*
 * The up side of the fit (#18) with the simulator as a local process (no Docker: DOCKER_HOST points nowhere),
 * fed the model's memory figures and the GPU it plays: the retry once with the context vLLM says fits,
 * the refusal with that figure under --context, the calibration kept for the next plan, and a busy GPU.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { loadConfig } from '../../src/core/config.js';
import { isAlive, localPaths, readLocalState } from '../../src/engine/local.js';
import { engineDown } from '../../src/engine/manage.js';
import { runCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { scenarioDir } from '../gpu/fixtures.js';

const NO_DOCKER = 'unix:///nonexistent/cs-llm-test-docker.sock';

function home(t: TestContext, scenario?: string): { dir: string; env: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-upfit-'));
  const env: Record<string, string> = { CS_LLM_HOME: dir, DOCKER_HOST: NO_DOCKER };
  if (scenario) env.PATH = `${scenarioDir(scenario)}:${process.env.PATH}`;
  t.after(async () => {
    const full = { ...process.env, ...env };
    await engineDown({ paths: loadConfig({ env: full }).paths, env: full, purge: true });
    rmSync(dir, { recursive: true, force: true });
  });
  return { dir, env };
}

test('vLLM refuses the planned context and names the longest that fits: up starts again once with it, saying so', async (t) => {
  const { env } = home(t);
  const port = await freePort();
  // A 12 GiB card for Qwen3-14B-AWQ: about 4.9k tokens of KV cache, less than the 8192 planned without a GPU.
  const args = ['up', '--engine', 'sim', '--model', 'qwen3-14b-awq', '--port', String(port), '--no-daemon', '--json'];
  const run = await runCli([...args, '--engine-env', 'SIM_GPU_MEMORY_MIB=12288'], { env, timeoutMs: 120_000 });
  assert.equal(run.exitCode, 0, String(run.stderr));
  const note =
    /vLLM says the KV cache holds at most (\d+) tokens of context here \(the plan had 8192\); starting again once with --context (\d+)/.exec(
      String(run.stderr),
    );
  assert.ok(note, String(run.stderr));
  assert.equal(note[1], note[2]);
  const result = JSON.parse(String(run.stdout)) as { maxModelLen: number; maxNumSeqs: number };
  assert.equal(result.maxModelLen, Number(note[1]));
  assert.ok(result.maxModelLen < 8192 && result.maxModelLen % 16 === 0);
  assert.equal(result.maxNumSeqs, 4);
});

test('with --context, a context vLLM cannot hold is refused with its figure (exit 5), and nothing is left running', async (t) => {
  const { dir, env } = home(t);
  const port = await freePort();
  const run = await runCli(
    [
      'up',
      '--engine',
      'sim',
      '--model',
      'qwen3-14b-awq',
      '--context',
      '8192',
      '--port',
      String(port),
      '--no-daemon',
      '--engine-env',
      'SIM_GPU_MEMORY_MIB=12288',
    ],
    { env, timeoutMs: 120_000 },
  );
  assert.equal(run.exitCode, 5, String(run.stderr));
  assert.match(String(run.stderr), /--context 8192 does not fit: vLLM says the KV cache of qwen3-14b-awq holds at most \d+ tokens here/);
  assert.match(String(run.stderr), /next: Use --context \d+ or less/);
  assert.match(String(run.stderr), /estimated maximum model length is \d+/, 'the log lines come along');
  assert.ok(!String(run.stderr).includes('starting again'));
  const state = readLocalState(localPaths(join(dir, 'state')));
  assert.ok(state === null || !isAlive(state.pid), 'no simulator process left');
});

test('the simulator playing a recorded RTX 4090: what it reports is kept, and models then shows measured beside estimated', async (t) => {
  const { dir, env } = home(t, 'rtx4090-display');
  const port = await freePort();
  const run = await runCli(['up', '--engine', 'sim', '--gpus', '0', '--model', 'qwen3-14b-awq', '--port', String(port), '--no-daemon'], {
    env,
    timeoutMs: 120_000,
  });
  assert.equal(run.exitCode, 0, String(run.stderr));
  const kept = /vLLM's KV cache: (\d+) tokens \(the estimate said (\d+), [+-]\d+\.\d%\); kept for the next plan/.exec(String(run.stderr));
  assert.ok(kept, String(run.stderr));
  const file = JSON.parse(readFileSync(join(dir, 'state', 'measurements.json'), 'utf8')) as {
    measurements: Array<{ gpuName: string; gpuMemoryMiB: number; model: string; kvCacheTokens: number; weightsGiB: number }>;
  };
  assert.equal(file.measurements.length, 1);
  assert.equal(file.measurements[0]!.gpuName, 'NVIDIA GeForce RTX 4090');
  assert.equal(file.measurements[0]!.gpuMemoryMiB, 24564);
  assert.equal(file.measurements[0]!.kvCacheTokens, Number(kept[1]));
  assert.equal(file.measurements[0]!.weightsGiB, 9.2915);

  // The next up plans with it, and says so.
  const again = await runCli(['up', '--engine', 'sim', '--gpus', '0', '--model', 'qwen3-14b-awq', '--port', String(port), '--no-daemon'], {
    env,
    timeoutMs: 120_000,
  });
  assert.equal(again.exitCode, 0, String(again.stderr));
  assert.match(String(again.stderr), new RegExp(`KV cache ${kept[1]} tokens \\(measured by vLLM before; the estimate says ${kept[2]}\\)`));

  const models = await runCli(['models', '--json'], { env });
  const entry = (
    JSON.parse(String(models.stdout)) as { models: Array<{ id: string; fitSource: string; measuredKvCacheTokens: number }> }
  ).models.find((m) => m.id === 'qwen3-14b-awq')!;
  assert.equal(entry.fitSource, 'measured');
  assert.equal(entry.measuredKvCacheTokens, Number(kept[1]));
});

test('--gpus 1 on a busy GPU is refused before anything starts, naming the processes that hold its memory', async (t) => {
  const { env } = home(t, 'two-gpus-busy');
  const run = await runCli(['up', '--engine', 'sim', '--gpus', '1', '--model', 'qwen3-8b-awq', '--no-daemon'], { env, timeoutMs: 60_000 });
  assert.equal(run.exitCode, 5, String(run.stderr));
  assert.match(
    String(run.stderr),
    /GPU 1 \(NVIDIA GeForce RTX 3090\) is busy: 5\.3 GiB free, and vLLM needs 21\.6 GiB \(0\.9 x 24\.0 GiB\) free to start\. Using it: pid 4242 python3 \(16\.0 GiB\), pid 5151 \/usr\/local\/bin\/ollama \(2\.0 GiB\)/,
  );
  assert.match(String(run.stderr), /next: Stop those processes, pick another GPU with --gpus/);
  assert.ok(!String(run.stderr).includes('local process'), 'nothing was started');
});
