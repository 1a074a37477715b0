import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FitError, UsageError } from '../../src/core/errors.js';
import { chooseAutoEngine } from '../../src/engine/auto.js';
import { chooseCpuModel, cpuThreads, planCpuEngine, SHIPPED_MODELS_DIR } from '../../src/engine/cpu-plan.js';
import { buildEngineSpec, type EngineSpecInput } from '../../src/engine/spec.js';
import { loadCatalog } from '../../src/models/catalog.js';
import { parseCpuArgs, CpuOptionsError } from '../../src/cpu/options.js';
import { toChatHistory } from '../../src/cpu/history.js';
import type Docker from 'dockerode';

const GiB = 1024 ** 3;
const catalog = loadCatalog();
const plenty = { totalBytes: 16 * GiB, availableBytes: 12 * GiB };

test('threads: CS_LLM_CPU_THREADS when given, else all CPUs but one, never below one nor above the CPUs', () => {
  assert.equal(cpuThreads({}, 2), 1);
  assert.equal(cpuThreads({}, 1), 1);
  assert.equal(cpuThreads({}, 8), 7);
  assert.equal(cpuThreads({ CS_LLM_CPU_THREADS: '2' }, 2), 2);
  assert.throws(
    () => cpuThreads({ CS_LLM_CPU_THREADS: '3' }, 2),
    (err: unknown) => err instanceof UsageError && /from 1 to 2/.test(err.message),
  );
  assert.throws(() => cpuThreads({ CS_LLM_CPU_THREADS: 'many' }, 2), UsageError);
});

test('no model given: the shipped tiny-memory model, with a plain notice that it is a demo and how to pick a real one', () => {
  const choice = chooseCpuModel(catalog, undefined, { CS_LLM_GGUF_DIR: mkdtempSync(join(tmpdir(), 'gguf-')) });
  assert.equal(choice.model.id, 'tiny-memory');
  assert.equal(choice.hostModelPath, join(SHIPPED_MODELS_DIR, 'tiny-memory.gguf'));
  assert.equal(choice.sha256, '0c0dbd6afb4052c7dce356f2ce50b8ccdf081d33ad7634577086d8715d108585');
  assert.match(choice.notes.join('\n'), /tiny demo model .*--model \/path\/to\/model\.gguf/);
  assert.deepEqual(chooseCpuModel(catalog, 'tiny-chat', {}).notes, []);
});

test('a model for another engine, a missing file and a file that is not GGUF are refused with what to do', () => {
  assert.throws(
    () => chooseCpuModel(catalog, 'qwen2.5-7b-instruct-awq', {}),
    (err: unknown) => err instanceof UsageError && /does not run on the cpu engine/.test(err.message),
  );
  assert.throws(
    () => chooseCpuModel(catalog, '/nowhere/m.gguf', {}),
    (err: unknown) => err instanceof UsageError && /model file not found: \/nowhere\/m\.gguf/.test(err.message),
  );
  const fake = join(mkdtempSync(join(tmpdir(), 'gguf-')), 'x.gguf');
  writeFileSync(fake, 'PK\u0003\u0004 a zip');
  assert.throws(
    () => chooseCpuModel(catalog, fake, {}),
    (err: unknown) => err instanceof UsageError && /model file is not GGUF/.test(err.message) && /vllm/.test(err.next ?? ''),
  );
});

test('the plan refuses a context beyond the model and a model that does not fit in RAM', () => {
  assert.throws(
    () => planCpuEngine(catalog, { model: 'tiny-memory', context: 1024 }, {}, plenty),
    (err: unknown) => err instanceof UsageError && /--context 1024 is larger than the model's context length 512/.test(err.message),
  );
  assert.throws(
    () => planCpuEngine(catalog, {}, {}, { totalBytes: GiB, availableBytes: 50 * 1024 ** 2 }),
    (err: unknown) => err instanceof FitError && /does not fit in this machine's memory/.test(err.message),
  );
  const plan = planCpuEngine(catalog, {}, { CS_LLM_CPU_THREADS: '1' }, plenty);
  assert.deepEqual(
    [plan.maxModelLen, plan.maxNumSeqs, plan.cpu.threads, plan.cpu.containerModelPath],
    [512, 1, 1, '/models/tiny-memory.gguf'],
  );
});

test('the cpu container: model mounted read-only, --threads and the CPU quota set together, vLLM-style flags, loopback port', () => {
  const plan = planCpuEngine(catalog, { model: 'tiny-chat' }, { CS_LLM_CPU_THREADS: '1' }, plenty);
  const input: EngineSpecInput = {
    kind: 'cpu',
    image: '127.0.0.1:5000/cs-llm/cpu:test',
    model: { id: plan.model.id, hfRepo: plan.model.id, servedName: plan.model.servedName },
    maxModelLen: plan.maxModelLen,
    maxNumSeqs: plan.maxNumSeqs,
    gpuMemoryUtilization: 0.9,
    gpus: { mode: 'none' },
    port: 18000,
    hfCacheDir: '/unused',
    offline: false,
    instance: 'abc',
    cpu: plan.cpu,
  };
  const spec = buildEngineSpec(input);
  assert.deepEqual(spec.options.Cmd, [
    '--host',
    '0.0.0.0',
    '--port',
    '8000',
    '--model',
    '/models/tiny-chat.gguf',
    '--served-model-name',
    'tiny-chat',
    '--max-model-len',
    '512',
    '--max-num-seqs',
    '1',
    '--threads',
    '1',
    '--sha256',
    '0d53671e3091d9c86d37d1818d47a6d519a80fb12e90b7dfafa1a84f627b3f6a',
  ]);
  assert.deepEqual(spec.options.HostConfig?.Binds, [`${join(SHIPPED_MODELS_DIR, 'tiny-chat.gguf')}:/models/tiny-chat.gguf:ro`]);
  assert.equal(spec.options.HostConfig?.NanoCpus, 1e9);
  assert.equal(spec.options.HostConfig?.DeviceRequests, undefined);
  assert.deepEqual(spec.options.HostConfig?.PortBindings, { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: '18000' }] });
  const twoThreads = buildEngineSpec({ ...input, cpu: { ...plan.cpu, threads: 2 } });
  assert.notEqual(twoThreads.configHash, spec.configHash);
  assert.equal(twoThreads.options.HostConfig?.NanoCpus, 2e9);
});

test('--engine auto: cpu without a usable GPU, with the reason in one line', async () => {
  const noDocker = {} as Docker;
  const choice = await chooseAutoEngine(
    {},
    async () => ({ source: 'none', gpus: [], usable: false, driverVersion: null, problem: 'nvidia-smi was not found on PATH' }) as never,
    noDocker,
    'x',
  );
  assert.deepEqual(choice, {
    kind: 'cpu',
    why: 'engine auto: cpu, because there is no usable NVIDIA GPU (nvidia-smi was not found on PATH)',
  });
  assert.doesNotMatch(choice.why, /\n/);
});

test('--engine auto on a GPU box falls back to cpu only with the way to the GPU in the same line', async () => {
  const gpu = async () =>
    ({ source: 'nvidia-smi', gpus: [{ name: 'NVIDIA GeForce RTX 4090' }], usable: true, driverVersion: '550.120' }) as never;
  const denied = Object.assign(new Error('connect EACCES /var/run/docker.sock'), { code: 'EACCES' });
  const noAccess = { ping: () => Promise.reject(denied) } as unknown as Docker;
  const choice = await chooseAutoEngine({ DOCKER_HOST: 'unix:///var/run/docker.sock' }, gpu, noAccess, 'x');
  assert.equal(choice.kind, 'cpu');
  assert.equal(
    choice.why,
    'engine auto: cpu, because Docker is not usable (permission denied on unix:///var/run/docker.sock), and vllm runs only in Docker ' +
      '(GPU: NVIDIA GeForce RTX 4090); to serve on the GPU: add your user to the docker group (sudo usermod -aG docker $USER, ' +
      'then log in again), or run as root, then cs-llm up again',
  );
  assert.doesNotMatch(choice.why, /\n/);
});

test('the engine command line: --threads is required, vLLM names are accepted, unknown flags are refused', () => {
  assert.throws(
    () => parseCpuArgs(['--model', 'm.gguf'], {}),
    (err: unknown) => err instanceof CpuOptionsError && /--threads <n> is required/.test(err.message),
  );
  const parsed = parseCpuArgs(
    ['--model', 'm.gguf', '--max-model-len', '512', '--max-num-seqs', '2', '--gpu-memory-utilization', '0.9', '--enable-auto-tool-choice'],
    { CS_LLM_CPU_THREADS: '1' },
  );
  assert.deepEqual([parsed.options.threads, parsed.options.ctxSize, parsed.options.parallel], [1, 512, 2]);
  assert.deepEqual(parsed.ignored, ['--gpu-memory-utilization', '--enable-auto-tool-choice']);
  assert.throws(() => parseCpuArgs(['--model', 'm.gguf', '--threads', '0'], {}), /--threads must be a whole number of at least 1/);
  assert.throws(() => parseCpuArgs(['--model', 'm.gguf', '--threads', '1', '--flash'], {}), /unknown flag --flash/);
  assert.equal(parseCpuArgs(['--model', 'm.gguf', '--threads', '1', '--drain-timeout-ms', '0'], {}).options.drainTimeoutMs, 0);
  assert.equal(parseCpuArgs(['--model', 'm.gguf', '--threads', '1'], {}).options.drainTimeoutMs, undefined);
  assert.throws(
    () => parseCpuArgs(['--model', 'm.gguf', '--threads', '1', '--drain-timeout-ms', '5s'], {}),
    /--drain-timeout-ms must be a whole number of at least 0, got "5s"/,
  );
});

test('OpenAI messages become chat history: system/developer, user, assistant; tool results as user text; an empty model turn last', () => {
  assert.deepEqual(
    toChatHistory([
      { role: 'system', content: 'Be brief.' },
      { role: 'developer', content: 'No jokes.' },
      {
        role: 'user',
        content: [
          { type: 'text', text: 'My name is ' },
          { type: 'text', text: 'Grace.' },
        ],
      },
      { role: 'assistant', content: 'Hi Grace.' },
      { role: 'tool', content: '{"ok":true}' },
    ]),
    [
      { type: 'system', text: 'Be brief.\nNo jokes.' },
      { type: 'user', text: 'My name is Grace.' },
      { type: 'model', response: ['Hi Grace.'] },
      { type: 'user', text: 'Tool result: {"ok":true}' },
      { type: 'model', response: [] },
    ],
  );
});
