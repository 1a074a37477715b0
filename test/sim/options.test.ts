import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSimulatorArgs, resolveSimulatorOptions, SimOptionsError, simulatorFlagsHelp } from '../../src/sim/options.js';

test('a vLLM command line is accepted: known flags are used and the rest are ignored with their values', () => {
  const { options, ignored } = parseSimulatorArgs([
    '--model',
    'Qwen/Qwen2.5-14B-Instruct-AWQ',
    '--served-model-name',
    'qwen14',
    'qwen',
    '--max-model-len',
    '16384',
    '--gpu-memory-utilization',
    '0.90',
    '--max-num-seqs',
    '16',
    '--enable-auto-tool-choice',
    '--tool-call-parser',
    'hermes',
    '--dtype=half',
    '--trust-remote-code',
    '--host',
    '0.0.0.0',
    '--port',
    '8000',
  ]);
  assert.deepEqual(options, {
    model: 'Qwen/Qwen2.5-14B-Instruct-AWQ',
    servedModelNames: ['qwen14', 'qwen'],
    maxModelLen: 16384,
    maxNumSeqs: 16,
    host: '0.0.0.0',
    port: 8000,
    gpuMemoryUtilization: 0.9,
  });
  assert.deepEqual(ignored, ['--enable-auto-tool-choice', '--tool-call-parser', '--dtype', '--trust-remote-code']);
});

test('the model can come as the positional argument of `vllm serve MODEL`', () => {
  assert.equal(parseSimulatorArgs(['some/model', '--port', '9000']).options.model, 'some/model');
});

test('knobs come from SIM_* environment variables, and flags win over them', () => {
  const { options } = parseSimulatorArgs(['--ttft-ms', '25'], {
    SIM_LOAD_TIME_MS: '1500',
    SIM_TTFT_MS: '999',
    SIM_TOKENS_PER_SECOND: '40.5',
    SIM_FAIL_429_RATE: '0.25',
    SIM_CRASH_AT_START: 'torch.OutOfMemoryError: CUDA out of memory.',
    SIM_SEED: '7',
    VLLM_API_KEY: 'secret',
    CS_LLM_ENGINE_HOSTNAME: 'cs-llm-engine-x',
  });
  assert.equal(options.loadTimeMs, 1500);
  assert.equal(options.ttftMs, 25);
  assert.equal(options.tokensPerSecond, 40.5);
  assert.equal(options.fail429Rate, 0.25);
  assert.equal(options.crashAtStart, 'torch.OutOfMemoryError: CUDA out of memory.');
  assert.equal(options.seed, 7);
  assert.equal(options.apiKey, 'secret');
  assert.equal(options.engineHostname, 'cs-llm-engine-x');
  assert.equal(parseSimulatorArgs(['--api-key', 'k2'], { VLLM_API_KEY: 'secret' }).options.apiKey, 'k2');
});

test('a bad knob value is refused with the flag or variable named', () => {
  assert.throws(
    () => parseSimulatorArgs(['--fail-500-rate', '1.5']),
    (err: Error) => err instanceof SimOptionsError && /--fail-500-rate must be a share between 0 and 1, got "1.5"/.test(err.message),
  );
  assert.throws(() => parseSimulatorArgs(['--port', 'eighty']), /--port must be a whole number/);
  assert.throws(() => parseSimulatorArgs([], { SIM_HANG_RATE: 'often' }), /SIM_HANG_RATE must be a share/);
  assert.throws(() => parseSimulatorArgs(['--seed']), /--seed needs a value/);
  assert.throws(() => resolveSimulatorOptions({ maxNumSeqs: 0 }), /max-num-seqs must be at least 1/);
});

test('the served name defaults to the model id, else cs-llm-sim; --help is reported, not acted on', () => {
  assert.deepEqual(resolveSimulatorOptions({ model: 'm/x' }).servedModelNames, ['m/x']);
  assert.deepEqual(resolveSimulatorOptions({}).servedModelNames, ['cs-llm-sim']);
  assert.equal(resolveSimulatorOptions({}).host, '127.0.0.1');
  assert.equal(resolveSimulatorOptions({}).port, 8000);
  assert.equal(parseSimulatorArgs(['--help']).help, true);
  assert.match(simulatorFlagsHelp(), /--die-mid-stream-rate VALUE .*\[env SIM_DIE_MID_STREAM_RATE\]/);
});
