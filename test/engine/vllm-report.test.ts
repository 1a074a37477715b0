import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCacheConfigInfo, parseVllmStartup } from '../../src/engine/vllm-report.js';
import { SimulatedCrash, startSimulator } from '../../src/sim/server.js';

test('the v1 engine lines: KV cache size and maximum concurrency with thousands separators, apart or on one line', () => {
  const apart = parseVllmStartup([
    'INFO 08-06 10:09:12 [gpu_model_runner.py:1892] Model loading took 9.2915 GiB and 12.081734 seconds',
    'INFO 08-06 10:09:20 [gpu_worker.py:276] Available KV cache memory: 11.55 GiB',
    'INFO 08-06 10:09:21 [kv_cache_utils.py:849] GPU KV cache size: 34,952 tokens',
    'INFO 08-06 10:09:21 [kv_cache_utils.py:853] Maximum concurrency for 8,192 tokens per request: 4.27x',
  ]);
  assert.equal(apart.kvCacheTokens, 34952);
  assert.deepEqual(apart.maxConcurrency, { maxModelLen: 8192, concurrency: 4.27 });
  assert.equal(apart.weightsGiB, 9.2915);
  assert.equal(apart.availableKvGiB, 11.55);
  assert.equal(apart.refusal, null);

  const joined = parseVllmStartup([
    '(EngineCore_DP0 pid=268) INFO 10-21 00:35:03 [kv_cache_utils.py:1087] GPU KV cache size: 34,952 tokens, Maximum concurrency for 8,192 tokens per request: 4.27x',
    '(VllmWorker TP0 pid=301) INFO 10-21 00:34:41 [gpu_model_runner.py:2007] Model loading took 9.01 GiB memory and 40.208130 seconds',
  ]);
  assert.equal(joined.kvCacheTokens, 34952);
  assert.equal(joined.maxConcurrency?.concurrency, 4.27);
  assert.equal(joined.weightsGiB, 9.01);
});

test('older releases: no separators, and the v0 engine counts GPU (or CUDA) blocks of 16 tokens unless block_size says otherwise', () => {
  assert.deepEqual(parseVllmStartup(['INFO Maximum concurrency for 8192 tokens per request: 4.27x']).maxConcurrency, {
    maxModelLen: 8192,
    concurrency: 4.27,
  });
  const v0 = parseVllmStartup(['INFO 05-01 12:00:00 executor_base.py:110] # GPU blocks: 2184, # CPU blocks: 512']);
  assert.equal(v0.gpuBlocks, 2184);
  assert.equal(v0.kvCacheTokens, 2184 * 16);
  const cuda = parseVllmStartup([
    "INFO non-default args: {'model': 'm', 'block_size': 32}",
    'INFO 05-01 12:00:00 [executor_base.py:113] # cuda blocks: 1000, # CPU blocks: 256',
  ]);
  assert.equal(cuda.kvCacheTokens, 32000);
});

test('the refusals: the context that fits (both spellings and the v0 form), too little free memory, no room for the cache', () => {
  const refusal = (line: string) => parseVllmStartup(['INFO starting', line]).refusal;
  assert.deepEqual(
    refusal(
      "(EngineCore_DP0 pid=268) ERROR 10-21 00:35:03 [core.py:708] ValueError: To serve at least one request with the models's max seq len (8192), (18.00 GiB KV cache is needed, which is larger than the available KV cache memory (4.00 GiB). Based on the available memory, the estimated maximum model length is 1808. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
    ),
    {
      kind: 'context',
      maxModelLen: 8192,
      fits: 1808,
      line: "(EngineCore_DP0 pid=268) ERROR 10-21 00:35:03 [core.py:708] ValueError: To serve at least one request with the models's max seq len (8192), (18.00 GiB KV cache is needed, which is larger than the available KV cache memory (4.00 GiB). Based on the available memory, the estimated maximum model length is 1808. Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.",
    },
  );
  assert.equal(
    (
      refusal("ValueError: To serve at least one request with the model's max seq len (4096), (0.58 GiB KV cache is needed") as {
        fits: number | null;
      }
    ).fits,
    null,
  );
  assert.equal(
    (
      refusal(
        "ValueError: The model's max seq len (4096) is larger than the maximum number of tokens that can be stored in KV cache (3664). Try increasing `gpu_memory_utilization`",
      ) as { fits: number }
    ).fits,
    3664,
  );
  const free = refusal(
    '(EngineCore pid=17635) ValueError: Free memory on device cuda:0 (15.32/22.04 GiB) on startup is less than desired GPU memory utilization (0.88, 19.39 GiB). Decrease GPU',
  );
  assert.deepEqual(free && { ...free, line: undefined }, {
    kind: 'free-memory',
    freeGiB: 15.32,
    totalGiB: 22.04,
    utilization: 0.88,
    neededGiB: 19.39,
    line: undefined,
  });
  assert.equal(
    refusal('ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`')?.kind,
    'no-kv-memory',
  );
});

test('vllm:cache_config_info gives the GPU blocks and block size; a /metrics without it gives nothing', () => {
  const text = [
    '# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig',
    '# TYPE vllm:cache_config_info gauge',
    'vllm:cache_config_info{block_size="16",cache_dtype="auto",gpu_memory_utilization="0.9",num_gpu_blocks="4730",num_cpu_blocks="None"} 1.0',
  ].join('\n');
  assert.deepEqual(parseCacheConfigInfo(text), { gpuBlocks: 4730, blockSize: 16 });
  assert.equal(parseCacheConfigInfo('vllm:num_requests_running{model_name="m"} 0.0'), null);
});

test("the simulator's own lines parse into what it was told: the path runs without a GPU", async () => {
  const lines: string[] = [];
  const sim = await startSimulator({
    port: 0,
    gpuMemoryMiB: 24564,
    weightsBytes: 9_976_690_240,
    kvBytesPerToken: 160 * 1024,
    maxModelLen: 8192,
    log: (l) => lines.push(l),
  });
  try {
    const report = parseVllmStartup(lines);
    assert.equal(report.kvCacheTokens, 75680);
    assert.equal(report.maxConcurrency?.maxModelLen, 8192);
    assert.equal(report.weightsGiB, 9.2915);
    const info = parseCacheConfigInfo(await (await fetch(`${sim.url}/metrics`)).text());
    assert.equal(info!.gpuBlocks! * info!.blockSize!, 75680);
  } finally {
    await sim.close();
  }
  const crashed = await startSimulator({
    port: 0,
    gpuMemoryMiB: 24564,
    weightsBytes: 9_976_690_240,
    kvBytesPerToken: 160 * 1024,
    maxModelLen: 131072,
  }).catch((err: unknown) => err);
  assert.ok(crashed instanceof SimulatedCrash);
  const refusal = parseVllmStartup(crashed.lines).refusal;
  assert.equal(refusal?.kind, 'context');
  assert.equal(refusal?.kind === 'context' && refusal.fits, 75680);
});
