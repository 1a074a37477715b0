import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeComputeApps, parseComputeAppsCsv, queryComputeApps } from '../../src/gpu/compute-apps.js';
import { detectGpus } from '../../src/gpu/detect.js';
import { ENV_WITHOUT_NVIDIA_SMI, envWithScenario, recorded } from './fixtures.js';

test("the compute-apps CSV: header skipped, one process per line with its MiB, [N/A] memory unknown, a name with ', ' kept whole", () => {
  assert.deepEqual(parseComputeAppsCsv(recorded('two-gpus-busy', 'compute-apps-1.csv')), [
    { pid: 4242, processName: 'python3', usedMemoryMiB: 16384 },
    { pid: 5151, processName: '/usr/local/bin/ollama', usedMemoryMiB: 2048 },
  ]);
  assert.deepEqual(parseComputeAppsCsv(recorded('two-gpus-busy', 'compute-apps-0.csv')), []);
  assert.deepEqual(parseComputeAppsCsv('pid, process_name, used_gpu_memory [MiB]\n77, my app, v2, [N/A]\n'), [
    { pid: 77, processName: 'my app, v2', usedMemoryMiB: null },
  ]);
});

test('the query runs nvidia-smi for one GPU: the busy GPU names its processes, the idle one none', async () => {
  const env = envWithScenario('two-gpus-busy');
  const report = await detectGpus({ env });
  assert.equal(report.gpus[1]!.memoryFreeMiB, 5452);
  const busy = await queryComputeApps(1, { env });
  assert.equal(busy.problem, undefined);
  assert.equal(describeComputeApps(busy.apps), 'pid 4242 python3 (16.0 GiB), pid 5151 /usr/local/bin/ollama (2.0 GiB)');
  assert.deepEqual((await queryComputeApps(0, { env })).apps, []);
});

test('a query that cannot run says why instead of throwing', async () => {
  const missing = await queryComputeApps(0, { env: ENV_WITHOUT_NVIDIA_SMI });
  assert.deepEqual(missing.apps, []);
  assert.match(missing.problem!, /not found/);
  const refused = await queryComputeApps(0, { env: envWithScenario('a100-80gb') });
  assert.match(refused.problem!, /^nvidia-smi failed: /);
});
