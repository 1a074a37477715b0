import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/core/config.js';
import { FitError } from '../../src/core/errors.js';
import { replicaDaemonEnv, REPLICAS_KEY_ENV } from '../../src/engine/front.js';
import { planEngine } from '../../src/engine/plan.js';
import { containerNameFor, formatGpuSelection } from '../../src/engine/spec.js';
import { detectGpus } from '../../src/gpu/detect.js';
import { runCli } from '../helpers/cli.js';
import { envWithScenario, scenarioDir } from '../gpu/fixtures.js';

async function plan(scenario: string, engine: Record<string, unknown>) {
  const env = { ...process.env, CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-place-')) };
  const loaded = loadConfig({ env, flags: { engine: { kind: 'vllm', port: 9000, ...engine } } });
  return planEngine(
    { engine: loaded.config.engine, paths: loaded.paths, env },
    { detectGpus: () => detectGpus({ env: envWithScenario(scenario) }), computeApps: async () => ({ apps: [] }) },
  );
}

test('two GPUs and a model that fits one: an engine on each, pinned to its GPU, on consecutive ports', async () => {
  const p = await plan('two-gpus', { model: 'qwen3-8b-awq' });
  assert.equal(p.placement, 'replicas');
  assert.deepEqual(
    p.engines.map((e) => [formatGpuSelection(e.gpus), e.tensorParallel, e.port]),
    [
      ['0', 1, 9000],
      ['1', 1, 9001],
    ],
  );
  assert.equal(p.maxModelLen, 32768);
});

test('a model that needs more than one GPU is split tensor parallel over the smallest set that holds it', async () => {
  const p = await plan('two-gpus', { model: 'llama-3.1-70b-instruct-awq-int4' });
  assert.equal(p.placement, 'tensor-parallel');
  assert.equal(p.engines.length, 1);
  assert.equal(p.engines[0]!.tensorParallel, 2);
  // On the A100 80GB it fits alone: one engine, no split.
  const one = await plan('a100-80gb', { model: 'llama-3.1-70b-instruct-awq-int4' });
  assert.equal(one.placement, 'single');
  assert.equal(one.tensorParallel, 1);
});

test('--placement overrides: tensor-parallel splits a small model, replicas refuses a model no single GPU holds', async () => {
  const split = await plan('two-gpus', { model: 'qwen3-8b-awq', placement: 'tensor-parallel' });
  assert.equal(split.placement, 'tensor-parallel');
  assert.equal(split.engines[0]!.tensorParallel, 2);
  await assert.rejects(plan('two-gpus', { model: 'llama-3.1-70b-instruct-awq-int4', placement: 'replicas' }), (err: unknown) => {
    assert.ok(err instanceof FitError);
    assert.match(err.message, /does not fit one GPU of GPU 0 .* \(--placement replicas\)/);
    return true;
  });
});

test('with --gpus all a busy GPU is passed over: the model runs on the free one alone', async () => {
  const p = await plan('two-gpus-busy', { model: 'qwen3-8b-awq' });
  assert.equal(p.placement, 'single');
  assert.deepEqual(
    p.engines.map((e) => formatGpuSelection(e.gpus)),
    ['0'],
  );
});

test('replicas reach the daemon as local upstreams with sticky sessions, their one key by variable name only', () => {
  const env = replicaDaemonEnv(['http://127.0.0.1:9000', 'http://127.0.0.1:9001'], { PATH: '/bin' }, 'csk_engine_k');
  assert.deepEqual(JSON.parse(env.CS_LLM_DAEMON_UPSTREAMS!), [
    { name: 'engine-0', url: 'http://127.0.0.1:9000', kind: 'local', apiKeyEnv: REPLICAS_KEY_ENV },
    { name: 'engine-1', url: 'http://127.0.0.1:9001', kind: 'local', apiKeyEnv: REPLICAS_KEY_ENV },
  ]);
  assert.equal(env.CS_LLM_DAEMON_STICKY, 'true');
  assert.equal(env[REPLICAS_KEY_ENV], 'csk_engine_k');
  // The config loader reads that environment as the daemon will: two upstreams, sticky, and the key name is no config field.
  const loaded = loadConfig({ env: { ...env, CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-place-')) } });
  assert.equal(loaded.config.daemon.upstreams.length, 2);
  assert.equal(loaded.config.daemon.sticky, true);
  assert.equal(containerNameFor('abc', 0), 'cs-llm-engine-abc');
  assert.equal(containerNameFor('abc', 1), 'cs-llm-engine-abc-1');
});

test('up --dry-run --json prints the plan and starts nothing: engines, GPUs, ports, placement, estimated or measured', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-place-'));
  const env = { CS_LLM_HOME: home, PATH: `${scenarioDir('two-gpus')}:${process.env.PATH}`, DOCKER_HOST: 'unix:///nonexistent/cs-llm.sock' };
  const run = await runCli(['up', '--engine', 'vllm', '--model', 'qwen3-8b-awq', '--port', '9100', '--dry-run', '--json'], { env });
  assert.equal(run.exitCode, 0, String(run.stderr));
  const plan = JSON.parse(String(run.stdout)) as {
    dryRun: boolean;
    placement: string;
    maxModelLen: number;
    fit: { source: string; kvCacheTokens: number };
    engines: Array<{ name: string; gpus: string; port: number; gpuNames: string[] }>;
    daemon: { upstreams: string[]; sticky: boolean };
  };
  assert.equal(plan.dryRun, true);
  assert.equal(plan.placement, 'replicas');
  assert.equal(plan.fit.source, 'estimated');
  assert.deepEqual(
    plan.engines.map((e) => [e.gpus, e.port, e.gpuNames]),
    [
      ['0', 9100, ['0: NVIDIA GeForce RTX 3090']],
      ['1', 9101, ['1: NVIDIA GeForce RTX 3090']],
    ],
  );
  assert.deepEqual(plan.daemon.upstreams, ['http://127.0.0.1:9100', 'http://127.0.0.1:9101']);
  assert.equal(plan.daemon.sticky, true);
  // The fixture's driver 550.120 is older than the pinned image's CUDA 12.8 wants: said before anything is pulled.
  assert.deepEqual(
    (plan as unknown as { notes: string[] }).notes.map((n) => n.replace(/\).*/, ')')),
    ['driver 550.120 is older than R570, which vllm/vllm-openai:v0.10.1.1 (CUDA 12.8)'],
  );
  const ownImage = await runCli(
    ['up', '--engine', 'vllm', '--model', 'qwen3-8b-awq', '--image', 'vllm/vllm-openai:cu124', '--dry-run', '--json'],
    { env },
  );
  assert.deepEqual((JSON.parse(String(ownImage.stdout)) as { notes: string[] }).notes, [], 'another image may be built for an older CUDA');
  const text = await runCli(['up', '--engine', 'vllm', '--model', 'qwen3-8b-awq', '--dry-run'], { env });
  assert.match(String(text.stdout), /^note: driver 550\.120 is older than R570.*if the engine does not start, update the NVIDIA driver/m);
  assert.match(String(text.stdout), /^plan \(dry run: nothing pulled or started\)$/m);
  assert.match(String(text.stdout), /^placement: replicas \(2 engines\)$/m);
  const bad = await runCli(['up', '--placement', 'spread', '--dry-run'], { env });
  assert.equal(bad.exitCode, 2);
  assert.match(String(bad.stderr), /--placement must be auto, replicas or tensor-parallel/);
});
