import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SimulatedCrash, startSimulator } from '../../src/sim/server.js';
import { parseSimulatorArgs } from '../../src/sim/options.js';
import { BLOCK_SIZE, SIM_RUNTIME_BYTES, simulateMemory } from '../../src/sim/memory.js';
import { eventually, simFor } from './harness.js';

const GiB = 1024 ** 3;
const KiB = 1024;
/** Qwen3-14B-AWQ on an RTX 4090: 9,976,690,240 bytes of weights, 160 KiB of KV per token, 24564 MiB. */
const QWEN3_14B = { weightsBytes: 9_976_690_240, kvBytesPerToken: 160 * KiB, gpuMemoryMiB: 24564 };

async function startLines(options: Parameters<typeof startSimulator>[0]): Promise<{ lines: string[]; crash?: SimulatedCrash }> {
  const lines: string[] = [];
  try {
    const sim = await startSimulator({ port: 0, ...options, log: (line) => lines.push(line) });
    await eventually(() => lines.some((l) => l.includes('Uvicorn running')), 'the loaded lines');
    await sim.close();
    return { lines };
  } catch (err) {
    if (err instanceof SimulatedCrash) return { lines, crash: err };
    throw err;
  }
}

function kvTokens(lines: string[]): number {
  const line = lines.find((l) => l.includes('GPU KV cache size:'));
  assert.ok(line, 'a KV cache size line');
  return Number(/GPU KV cache size: ([\d,]+) tokens/.exec(line)![1]!.replace(/,/g, ''));
}

test('with a simulated GPU the KV cache is what the memory leaves: utilization x memory - weights - runtime, in 16-token blocks', () => {
  const memory = simulateMemory({ ...QWEN3_14B, gpuMemoryUtilization: 0.9, tensorParallelSize: 1, maxModelLen: 32768 });
  assert.equal(memory.kind, 'fits');
  if (memory.kind !== 'fits') return;
  const available = 24564 * 1024 ** 2 * 0.9 - QWEN3_14B.weightsBytes - SIM_RUNTIME_BYTES;
  assert.equal(memory.availableKvBytes, available);
  assert.equal(memory.kvCacheTokens, Math.floor(available / (160 * KiB * BLOCK_SIZE)) * BLOCK_SIZE);
  assert.equal(memory.kvCacheTokens % BLOCK_SIZE, 0);
  // Tensor parallel halves the weights and the KV bytes per GPU: more than twice the tokens.
  const split = simulateMemory({ ...QWEN3_14B, gpuMemoryUtilization: 0.9, tensorParallelSize: 2, maxModelLen: 32768 });
  assert.ok(split.kind === 'fits' && split.kvCacheTokens > 2 * memory.kvCacheTokens);
  assert.deepEqual(
    simulateMemory({ ...QWEN3_14B, gpuMemoryMiB: undefined, gpuMemoryUtilization: 0.9, tensorParallelSize: 1, maxModelLen: 8192 }),
    {
      kind: 'unmodelled',
    },
  );
});

test('the start-up lines come from the flags: the KV cache grows with --gpu-memory-utilization, the concurrency falls with --max-model-len', async () => {
  const at = async (util: number, len: number) => {
    const { options } = parseSimulatorArgs(['--gpu-memory-utilization', String(util), '--max-model-len', String(len)], {
      SIM_GPU_MEMORY_MIB: '24564',
      SIM_WEIGHTS_BYTES: String(QWEN3_14B.weightsBytes),
      SIM_KV_BYTES_PER_TOKEN: String(160 * KiB),
    });
    return (await startLines(options)).lines;
  };
  const low = await at(0.8, 8192);
  const high = await at(0.95, 8192);
  assert.ok(kvTokens(high) > kvTokens(low), `${kvTokens(high)} > ${kvTokens(low)}`);
  const long = await at(0.95, 32768);
  assert.equal(kvTokens(long), kvTokens(high), 'the pool does not depend on the context');
  const concurrency = (lines: string[]) =>
    Number(/Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x/.exec(lines.join('\n'))![1]);
  assert.ok(concurrency(long) < concurrency(high));
  assert.ok(long.some((l) => /Maximum concurrency for 32,768 tokens per request: \d+\.\d\dx$/.test(l)));
  assert.ok(high.some((l) => /\[gpu_model_runner\.py:\d+\] Model loading took 9\.2915 GiB and [\d.]+ seconds$/.test(l)));
  assert.ok(high.some((l) => /\[gpu_worker\.py:\d+\] Available KV cache memory: \d+\.\d\d GiB$/.test(l)));
  // Thousands separators, as vLLM's f"{n:,}" writes them.
  assert.match(
    high.find((l) => l.includes('GPU KV cache size'))!,
    /GPU KV cache size: \d{1,3}(,\d{3})+ tokens$/,
  );
});

test('a context the KV cache cannot hold is refused as vLLM refuses it, naming the longest that fits', async () => {
  const { lines, crash } = await startLines({ ...QWEN3_14B, gpuMemoryUtilization: 0.9, maxModelLen: 131072 });
  assert.ok(crash, 'the start fails');
  const last = crash.lines.at(-1)!;
  assert.match(
    last,
    /^ValueError: To serve at least one request with the models's max seq len \(131072\), \(20\.00 GiB KV cache is needed, which is larger than the available KV cache memory \(\d+\.\d\d GiB\)\. Based on the available memory, the estimated maximum model length is (\d+)\. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine\.$/,
  );
  const estimated = Number(/estimated maximum model length is (\d+)\./.exec(last)![1]);
  assert.equal(estimated % BLOCK_SIZE, 0);
  // The estimate is a context that starts.
  const again = await startLines({ ...QWEN3_14B, gpuMemoryUtilization: 0.9, maxModelLen: estimated });
  assert.equal(again.crash, undefined);
  assert.equal(kvTokens(again.lines), estimated);
  // The weights were loaded before the refusal, and no server line follows it.
  assert.ok(lines.some((l) => l.includes('Model loading took')));
  assert.ok(!lines.some((l) => l.includes('GPU KV cache size') || l.includes('Uvicorn running')));
});

test('a simulated GPU with too little free memory refuses before loading, with the figures of the check', async () => {
  const { lines, crash } = await startLines({ ...QWEN3_14B, gpuFreeMiB: 15_000, gpuMemoryUtilization: 0.9, maxModelLen: 8192 });
  assert.ok(crash);
  assert.match(
    crash.lines.at(-1)!,
    /^ValueError: Free memory on device cuda:0 \(14\.65\/23\.99 GiB\) on startup is less than desired GPU memory utilization \(0\.9, 21\.59 GiB\)\./,
  );
  assert.ok(!lines.some((l) => l.includes('Model loading took')));
});

test('weights that leave nothing for the KV cache are refused with vLLM\'s "No available memory for the cache blocks"', async () => {
  const { crash } = await startLines({ gpuMemoryMiB: 8192, weightsBytes: 8 * GiB, gpuMemoryUtilization: 0.9, maxModelLen: 4096 });
  assert.match(crash?.lines.at(-1) ?? '', /^ValueError: No available memory for the cache blocks\./);
});

test('/metrics carries vllm:cache_config_info with the blocks the start-up line counted', async (t) => {
  const lines: string[] = [];
  const sim = await simFor(t, { ...QWEN3_14B, maxModelLen: 8192, log: (line) => lines.push(line) });
  await eventually(() => lines.some((l) => l.includes('Uvicorn running')), 'loaded');
  const text = await (await fetch(`${sim.url}/metrics`)).text();
  const info = text.split('\n').find((l) => l.startsWith('vllm:cache_config_info{'));
  assert.ok(info, text);
  assert.match(info, /block_size="16"/);
  assert.match(info, / 1\.0$/);
  const blocks = Number(/num_gpu_blocks="(\d+)"/.exec(info)![1]);
  assert.equal(blocks * BLOCK_SIZE, kvTokens(lines));
});

test('without a simulated GPU nothing changes: a KV cache of four contexts and no memory refusal', async () => {
  const { lines, crash } = await startLines({ maxModelLen: 131072 });
  assert.equal(crash, undefined);
  assert.equal(kvTokens(lines), 4 * 131072);
  assert.ok(lines.some((l) => / Model loading took 0\.0000 GiB and /.test(l)));
});
