import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCpuArgs } from '../../src/cpu/options.js';

const base = ['--model', 'm.gguf', '--threads', '1'];

test('the API key comes from --api-key or VLLM_API_KEY (the flag wins), as with vLLM', () => {
  assert.equal(parseCpuArgs(base, {}).options.apiKey, undefined);
  assert.equal(parseCpuArgs(base, { VLLM_API_KEY: 'from-env' }).options.apiKey, 'from-env');
  assert.equal(parseCpuArgs([...base, '--api-key', 'from-flag'], { VLLM_API_KEY: 'from-env' }).options.apiKey, 'from-flag');
  assert.equal(parseCpuArgs([...base, '--api-key=k'], {}).options.apiKey, 'k');
});

test('the names the engine answers to besides loopback come from --engine-hostname or CS_LLM_ENGINE_HOSTNAME', () => {
  assert.equal(parseCpuArgs(base, { CS_LLM_ENGINE_HOSTNAME: 'cs-llm-engine-a' }).options.engineHostname, 'cs-llm-engine-a');
  assert.equal(parseCpuArgs([...base, '--engine-hostname', 'b'], { CS_LLM_ENGINE_HOSTNAME: 'a' }).options.engineHostname, 'b');
});
