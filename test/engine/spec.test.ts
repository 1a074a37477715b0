import assert from 'node:assert/strict';
import { test } from 'node:test';
import { UsageError } from '../../src/core/errors.js';
import { engineKeyId } from '../../src/engine/engine-key.js';
import { ENGINE_NETWORK } from '../../src/engine/network.js';
import { buildEngineSpec, configHashOf, LABEL, parseGpuSelection, type EngineSpecInput } from '../../src/engine/spec.js';

const base: EngineSpecInput = {
  kind: 'vllm',
  image: 'vllm/vllm-openai:v0.10.1.1',
  model: {
    id: 'qwen2.5-14b-instruct-awq',
    hfRepo: 'Qwen/Qwen2.5-14B-Instruct-AWQ',
    servedName: 'qwen2.5-14b-instruct-awq',
    toolCallParser: 'hermes',
    chatTemplate: null,
    engineArgs: [],
  },
  maxModelLen: 16384,
  maxNumSeqs: 16,
  gpuMemoryUtilization: 0.9,
  gpus: { mode: 'ids', ids: ['0'] },
  port: 8000,
  hfCacheDir: '/home/op/.cache/huggingface',
  offline: false,
  instance: 'abc123',
};

test('the vLLM command line carries model, served name, context, sequences, utilization and the tool parser', () => {
  const { options } = buildEngineSpec(base);
  assert.deepEqual(options.Cmd, [
    '--host',
    '0.0.0.0',
    '--port',
    '8000',
    '--model',
    'Qwen/Qwen2.5-14B-Instruct-AWQ',
    '--served-model-name',
    'qwen2.5-14b-instruct-awq',
    '--max-model-len',
    '16384',
    '--max-num-seqs',
    '16',
    '--gpu-memory-utilization',
    '0.9',
    '--enable-auto-tool-choice',
    '--tool-call-parser',
    'hermes',
  ]);
});

test('a model without a tool parser gets no tool flags, and a chat template and tensor parallel are passed', () => {
  const { options } = buildEngineSpec({
    ...base,
    tensorParallel: 2,
    model: { ...base.model, toolCallParser: null, chatTemplate: '/t.jinja' },
  });
  assert.ok(!options.Cmd!.includes('--enable-auto-tool-choice'));
  assert.deepEqual(options.Cmd!.slice(-4), ['--tensor-parallel-size', '2', '--chat-template', '/t.jinja']);
});

test('--quantization awq is never passed, even when a catalog entry asks for it', () => {
  const { options } = buildEngineSpec({
    ...base,
    model: { ...base.model, engineArgs: ['--quantization', 'awq', '--dtype', 'auto', '--quantization=awq'] },
  });
  assert.ok(!options.Cmd!.includes('--quantization'));
  assert.ok(!options.Cmd!.includes('--quantization=awq'));
  assert.deepEqual(options.Cmd!.slice(-2), ['--dtype', 'auto']);
});

test("the engine port is published on loopback only, on the engines' own network, with the HF cache and a bounded restart policy", () => {
  const { options } = buildEngineSpec(base);
  const host = options.HostConfig!;
  assert.deepEqual(host.PortBindings, { '8000/tcp': [{ HostIp: '127.0.0.1', HostPort: '8000' }] });
  assert.equal(host.NetworkMode, ENGINE_NETWORK);
  assert.deepEqual(host.Binds, ['/home/op/.cache/huggingface:/cache/huggingface']);
  assert.deepEqual(host.RestartPolicy, { Name: 'on-failure', MaximumRetryCount: 2 });
});

test('IPC is private for every engine; vLLM gets the shared memory its docs ask for, the others the default', () => {
  const vllm = buildEngineSpec(base).options.HostConfig!;
  assert.equal(vllm.IpcMode, 'private');
  assert.equal(vllm.ShmSize, Math.floor(10.24 * 1024 ** 3));
  for (const kind of ['sim', 'cpu'] as const) {
    const host = buildEngineSpec({ ...base, kind, gpus: { mode: 'none' } }).options.HostConfig!;
    assert.equal(host.IpcMode, 'private', kind);
    assert.equal(host.ShmSize, undefined, kind);
  }
});

test('every engine container drops all capabilities, cannot gain privileges, has a PID limit and runs as non-root', () => {
  const vllm = buildEngineSpec({ ...base, runAs: '1000:1000' }).options;
  assert.deepEqual(vllm.HostConfig!.CapDrop, ['ALL']);
  assert.deepEqual(vllm.HostConfig!.SecurityOpt, ['no-new-privileges']);
  assert.equal(vllm.HostConfig!.PidsLimit, 8192);
  // vLLM as the operator, so what it writes into the bind-mounted cache is theirs; HOME where that user can write.
  assert.equal(vllm.User, '1000:1000');
  for (const variable of ['HOME=/tmp', 'HF_HOME=/cache/huggingface', 'USER=cs-llm']) assert.ok(vllm.Env!.includes(variable), variable);
  for (const kind of ['sim', 'cpu'] as const) {
    const options = buildEngineSpec({ ...base, kind, gpus: { mode: 'none' }, runAs: '1000:1000' }).options;
    assert.deepEqual(options.HostConfig!.CapDrop, ['ALL'], kind);
    assert.deepEqual(options.HostConfig!.SecurityOpt, ['no-new-privileges'], kind);
    assert.equal(options.HostConfig!.PidsLimit, 256, kind);
    assert.equal(options.User, '65534:65534', kind);
  }
});

test('the engine key reaches every engine as VLLM_API_KEY, never its command line, labels or hash, and --engine-env cannot shadow it; HF_TOKEN only the engine that downloads', () => {
  const key = 'csk_engine_0123456789abcdefghijklmnopqrstuvwxyzABCDEFG';
  for (const kind of ['vllm', 'sim', 'cpu'] as const) {
    const input = {
      ...base,
      kind,
      gpus: kind === 'vllm' ? base.gpus : ({ mode: 'none' } as const),
      apiKey: key,
      hfToken: 'hf_test-not-a-real-token',
      extraEnv: { VLLM_API_KEY: 'csk_engine_shadow', SIM_TTFT_MS: '1' },
    };
    const spec = buildEngineSpec(input);
    assert.deepEqual(
      spec.options.Env!.filter((e) => e.startsWith('VLLM_API_KEY=')),
      [`VLLM_API_KEY=${key}`],
      kind,
    );
    assert.ok(!spec.options.Cmd!.some((a) => a.includes(key)), `${kind}: not on the command line`);
    assert.ok(!JSON.stringify(spec.options.Labels).includes(key), kind);
    assert.equal(spec.options.Labels![LABEL.keyId], engineKeyId(key), kind);
    assert.equal(spec.configHash, configHashOf({ ...input, apiKey: 'csk_engine_another_key_entirely_000000000000000' }), kind);
    assert.equal(
      spec.options.Env!.some((e) => e.startsWith('HF_TOKEN=')),
      kind === 'vllm',
      kind,
    );
  }
});

test('GPU choice becomes DeviceRequests: ids, all, or none at all', () => {
  assert.deepEqual(buildEngineSpec(base).options.HostConfig!.DeviceRequests, [
    { Driver: 'nvidia', DeviceIDs: ['0'], Capabilities: [['gpu']] },
  ]);
  assert.deepEqual(buildEngineSpec({ ...base, gpus: { mode: 'all' } }).options.HostConfig!.DeviceRequests, [
    { Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] },
  ]);
  assert.equal(buildEngineSpec({ ...base, kind: 'sim', gpus: { mode: 'none' } }).options.HostConfig!.DeviceRequests, undefined);
});

test('the token goes into the container but never into labels or the hash; offline sets both HF variables', () => {
  const withToken = buildEngineSpec({ ...base, hfToken: 'hf_test-not-a-real-token', offline: true });
  assert.ok(withToken.options.Env!.includes('HF_TOKEN=hf_test-not-a-real-token'));
  assert.ok(withToken.options.Env!.includes('HF_HUB_OFFLINE=1'));
  assert.ok(withToken.options.Env!.includes('TRANSFORMERS_OFFLINE=1'));
  assert.ok(!JSON.stringify(withToken.options.Labels).includes('secret'));
  const otherToken = buildEngineSpec({ ...base, hfToken: `hf_${'another'.repeat(3)}`, offline: true });
  assert.equal(withToken.configHash, otherToken.configHash);
  assert.ok(!buildEngineSpec(base).options.Env!.some((e) => e.startsWith('HF_TOKEN=') || e.startsWith('HF_HUB_OFFLINE=')));
});

test('labels mark the container as ours with engine, model, port, GPUs and the config hash', () => {
  const spec = buildEngineSpec(base);
  const labels = spec.options.Labels!;
  assert.equal(labels[LABEL.managed], 'true');
  assert.equal(labels[LABEL.instance], 'abc123');
  assert.equal(labels[LABEL.engine], 'vllm');
  assert.equal(labels[LABEL.model], 'qwen2.5-14b-instruct-awq');
  assert.equal(labels[LABEL.port], '8000');
  assert.equal(labels[LABEL.gpus], '0');
  assert.equal(labels[LABEL.configHash], spec.configHash);
  assert.equal(spec.name, 'cs-llm-engine-abc123');
});

test('the config hash is stable for the same input and changes with any flag that matters', () => {
  assert.equal(configHashOf(base), configHashOf({ ...base }));
  for (const change of [
    { port: 8001 },
    { maxModelLen: 8192 },
    { image: 'other:1' },
    { gpus: { mode: 'all' } as const },
    { offline: true },
    { extraEnv: { SIM_TTFT_MS: '5' } },
  ]) {
    assert.notEqual(configHashOf({ ...base, ...change }), configHashOf(base), JSON.stringify(change));
  }
});

test('the simulator does not mount the HF cache', () => {
  assert.equal(buildEngineSpec({ ...base, kind: 'sim', gpus: { mode: 'none' } }).options.HostConfig!.Binds, undefined);
});

test('--gpus accepts all, none and index lists, and rejects anything else with the flag named', () => {
  assert.deepEqual(parseGpuSelection('all'), { mode: 'all' });
  assert.deepEqual(parseGpuSelection('none'), { mode: 'none' });
  assert.deepEqual(parseGpuSelection('0,1'), { mode: 'ids', ids: ['0', '1'] });
  assert.throws(
    () => parseGpuSelection('gpu0'),
    (err: unknown) => err instanceof UsageError && /--gpus/.test(err.message),
  );
  assert.throws(() => parseGpuSelection('0,0'), UsageError);
});

test('a pinned revision reaches vLLM as --revision, and changes the config hash', () => {
  const pinned = { ...base, model: { ...base.model, revision: '31c69efc29464b6bb0aee1398b5a7b50a99340c3' } };
  const cmd = buildEngineSpec(pinned).options.Cmd!;
  assert.deepEqual(cmd.slice(cmd.indexOf('--revision'), cmd.indexOf('--revision') + 2), [
    '--revision',
    '31c69efc29464b6bb0aee1398b5a7b50a99340c3',
  ]);
  assert.ok(!buildEngineSpec(base).options.Cmd!.includes('--revision'));
  assert.notEqual(configHashOf(pinned), configHashOf(base));
});

test("the simulator gets the model's memory figures and the GPU it plays as SIM_* variables; --engine-env replaces one of them", () => {
  const sim: EngineSpecInput = {
    ...base,
    kind: 'sim',
    image: '127.0.0.1:5000/cs-llm/sim:0.1.0',
    simulated: { weightsBytes: 9_976_690_240, kvBytesPerToken: 163_840, gpuMemoryMiB: 24564, gpuFreeMiB: 23084 },
    extraEnv: { SIM_GPU_MEMORY_MIB: '12288' },
  };
  const env = buildEngineSpec(sim).options.Env!;
  assert.ok(env.includes('SIM_WEIGHTS_BYTES=9976690240'));
  assert.ok(env.includes('SIM_KV_BYTES_PER_TOKEN=163840'));
  assert.ok(env.includes('SIM_GPU_FREE_MIB=23084'));
  assert.deepEqual(
    env.filter((e) => e.startsWith('SIM_GPU_MEMORY_MIB=')),
    ['SIM_GPU_MEMORY_MIB=12288'],
  );
  assert.ok(!buildEngineSpec({ ...base, simulated: sim.simulated }).options.Env!.some((e) => e.startsWith('SIM_')), 'vLLM gets none');
});
