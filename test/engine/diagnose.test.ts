import assert from 'node:assert/strict';
import { test } from 'node:test';
import { diagnose, diagnoseDockerError, dockerErrorMessage, splitLogLines } from '../../src/engine/diagnose.js';

test('a KV cache smaller than max-model-len is explained with the context that fits', () => {
  const d = diagnose([
    'INFO 05-01 12:00:00 worker.py:200] Loading weights took 9.8 GB',
    "ValueError: The model's max seq len (4096) is larger than the maximum number of tokens that can be stored in KV cache (3664). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
  ]);
  assert.equal(d?.kind, 'kv-cache-too-small');
  assert.equal(d?.maxContext, 3664);
  assert.match(d!.fix, /--context 3664/);
  assert.equal(d?.environment, false);
});

test('CUDA out of memory points at a smaller context or model', () => {
  const d = diagnose(['torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.02 GiB. GPU 0 has a total capacity of 23.55 GiB']);
  assert.equal(d?.kind, 'cuda-oom');
  assert.match(d!.fix, /--context/);
  assert.match(d!.fix, /--model/);
});

test('free memory below the utilization is its own diagnosis, ahead of a later OOM line', () => {
  const d = diagnose([
    'ValueError: Free memory on device (20.1/23.6 GiB) on startup is less than desired GPU memory utilization (0.9, 21.2 GiB).',
    'CUDA out of memory',
  ]);
  assert.equal(d?.kind, 'free-memory-below-utilization');
});

test('a GPU too old for the quantization (vLLM refuses it at config time) names both capabilities and the CPU way', () => {
  const awq = diagnose([
    'ValueError: The quantization method awq is not supported for the current GPU. Minimum capability: 75. Current capability: 70.',
  ]);
  assert.equal(awq?.kind, 'gpu-too-old');
  assert.equal(awq!.summary, 'this GPU (compute capability 7.0) is too old for AWQ kernels, which need 7.5 or newer');
  assert.match(awq!.fix, /compute capability 7\.5 or newer.*--engine cpu/);
  assert.equal(awq!.environment, true);
  const scheme = diagnose([
    'ValueError: Quantization scheme is not supported for the current GPU. Min capability: 89. Current capability: 86.',
  ]);
  assert.equal(
    scheme!.summary,
    "this GPU (compute capability 8.6) is too old for the model's quantization kernels, which need 8.9 or newer",
  );
});

test("a host driver older than the image's CUDA is recognised in its three forms, with the driver it needs", () => {
  const toolkit = diagnose([
    'nvidia-container-cli: requirement error: unsatisfied condition: cuda>=12.4, please update your driver to a newer version, or use an earlier cuda container: unknown.',
  ]);
  assert.equal(toolkit?.kind, 'driver-too-old');
  assert.equal(toolkit!.summary, "the host's NVIDIA driver is older than CUDA 12.4, which the engine image needs");
  assert.equal(toolkit!.environment, true);
  const torch = diagnose([
    '(EngineCore pid=546) ERROR 08-12 03:12:29 [core.py:1202] RuntimeError: The NVIDIA driver on your system is too old (found version 12040). Please update your GPU driver',
  ]);
  assert.equal(
    torch!.summary,
    "the host's NVIDIA driver (it supports CUDA 12.4) is older than the CUDA the engine image is built for (12.8 for the default vllm/vllm-openai:v0.10.1.1)",
  );
  assert.match(torch!.fix, /driver 570 or newer.*--image/);
  const forward = diagnose([
    'RuntimeError: Unexpected error from cudaGetDeviceCount(). Error 804: forward compatibility was attempted on non supported HW',
  ]);
  assert.equal(forward?.kind, 'driver-too-old');
});

test('a GPU request without the NVIDIA runtime names the toolkit and the no-GPU way', () => {
  const err = Object.assign(
    new Error('(HTTP code 500) server error - could not select device driver "nvidia" with capabilities: [[gpu]]'),
    {
      statusCode: 500,
      json: { message: 'could not select device driver "nvidia" with capabilities: [[gpu]]' },
    },
  );
  const d = diagnoseDockerError(err);
  assert.equal(d?.kind, 'no-nvidia-runtime');
  assert.match(d!.fix, /nvidia-container-toolkit/);
  assert.match(d!.fix, /--gpus none/);
  assert.equal(d?.environment, true);
});

test('a host port in use at start suggests --port', () => {
  const d = diagnose([
    'driver failed programming external connectivity on endpoint x: Error starting userland proxy: listen tcp4 127.0.0.1:5000: bind: address already in use',
  ]);
  assert.equal(d?.kind, 'port-in-use');
  assert.match(d!.fix, /--port/);
});

test('a missing image tag or image is reported as image not found', () => {
  assert.equal(diagnose(['manifest for 127.0.0.1:5000/x:nope not found: manifest unknown: manifest unknown'])?.kind, 'image-not-found');
  assert.equal(diagnose(['No such image: nonexistent/image:1'])?.kind, 'image-not-found');
});

test('a gated model without a token asks for HF_TOKEN', () => {
  const d = diagnose([
    'huggingface_hub.errors.GatedRepoError: 401 Client Error. Cannot access gated repo for url https://huggingface.co/meta-llama/x/resolve/main/config.json.',
    'Access to model meta-llama/x is restricted. You must have access to it and be authenticated to access it. Please log in.',
  ]);
  assert.equal(d?.kind, 'gated-model');
  assert.match(d!.fix, /HF_TOKEN/);
});

test('an unreachable registry is told apart from a missing image', () => {
  const d = diagnose(['Get "http://127.0.0.1:5999/v2/": dial tcp 127.0.0.1:5999: connect: connection refused']);
  assert.equal(d?.kind, 'registry-unreachable');
});

test('ordinary log lines give no diagnosis', () => {
  assert.equal(
    diagnose(['INFO:     Uvicorn running on http://0.0.0.0:8000', 'Loading safetensors checkpoint shards: 100% Completed | 2/2']),
    null,
  );
});

test("the Docker message is taken without dockerode's HTTP prefix", () => {
  assert.equal(dockerErrorMessage({ message: '(HTTP code 404) no such container - No such container: abc' }), 'No such container: abc');
  assert.equal(dockerErrorMessage({ message: 'x', json: { message: 'from json' } }), 'from json');
});

test('log text splits into lines and keeps only the last redraw of a progress bar', () => {
  assert.deepEqual(splitLogLines('a\r\nLoading 10%\rLoading 50%\rLoading 100%\n\nb'), ['a', 'Loading 100%', 'b']);
});
