import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectGpus } from '../../src/gpu/detect.js';
import { ENV_WITHOUT_NVIDIA_SMI, envWithScenario } from './fixtures.js';

test('an RTX 4090 that drives a display is reported usable, with its driver and the memory the display holds', async () => {
  const report = await detectGpus({ env: envWithScenario('rtx4090-display') });
  assert.equal(report.source, 'nvidia-smi');
  assert.equal(report.usable, true);
  assert.equal(report.driverVersion, '550.120');
  assert.equal(report.migEnabled, false);
  assert.equal(report.problem, undefined);
  assert.equal(report.gpus.length, 1);
  assert.equal(report.gpus[0]!.displayActive, true);
  assert.equal(report.gpus[0]!.memoryUsedMiB, 1094);
});

test('two GPUs are both reported', async () => {
  const report = await detectGpus({ env: envWithScenario('two-gpus') });
  assert.deepEqual(
    report.gpus.map((g) => g.uuid),
    ['GPU-0b8e2f51-93c4-4d7a-a6e2-5c1f9d3b7a40', 'GPU-c47a9d12-6e5b-4f08-8b31-e2d05a9f6c18'],
  );
  assert.equal(report.usable, true);
});

test('an A100 80GB is reported with compute capability 8.0', async () => {
  const report = await detectGpus({ env: envWithScenario('a100-80gb') });
  assert.equal(report.gpus[0]!.name, 'NVIDIA A100-SXM4-80GB');
  assert.equal(report.gpus[0]!.memoryTotalMiB, 81920);
  assert.equal(report.gpus[0]!.computeCapability, '8.0');
});

test('MIG mode lists the instances and warns that the estimate from whole-GPU memory is too high', async () => {
  const report = await detectGpus({ env: envWithScenario('mig') });
  assert.equal(report.usable, true);
  assert.equal(report.migEnabled, true);
  assert.deepEqual(
    report.gpus[0]!.migDevices.map((d) => d.profile),
    ['3g.40gb', '3g.40gb'],
  );
  assert.match(report.problem!, /MIG is enabled on GPU 0/);
  assert.match(report.problem!, /3g\.40gb/);
  assert.match(report.fix!, /nvidia-smi -i 0 -mig 0/);
});

test('a driver that does not answer gives no GPUs, the driver message and a fix', async () => {
  const report = await detectGpus({ env: envWithScenario('driver-failure') });
  assert.equal(report.source, 'nvidia-smi');
  assert.equal(report.usable, false);
  assert.deepEqual(report.gpus, []);
  assert.match(report.problem!, /couldn't communicate with the NVIDIA driver/);
  assert.match(report.fix!, /NVIDIA driver/);
});

test('"No devices were found" and a permission refusal are reported with their own fixes', async () => {
  const none = await detectGpus({ env: envWithScenario('no-devices') });
  assert.match(none.problem!, /sees no GPU/);
  assert.match(none.fix!, /lspci/);
  const denied = await detectGpus({ env: envWithScenario('permission') });
  assert.match(denied.problem!, /refused access/);
  assert.match(denied.fix!, /\/dev\/nvidia/);
});

test('an old driver that rejects compute_cap is asked again with the basic fields', async () => {
  const report = await detectGpus({ env: envWithScenario('old-driver') });
  assert.equal(report.usable, true);
  assert.equal(report.gpus[0]!.name, 'Tesla T4');
  assert.equal(report.gpus[0]!.computeCapability, null);
  assert.equal(report.driverVersion, '470.239.06');
});

test('an nvidia-smi that hangs and ignores SIGTERM is killed and reported, not waited on', async () => {
  const report = await detectGpus({ env: envWithScenario('hang'), timeoutMs: 300 });
  assert.equal(report.usable, false);
  assert.match(report.problem!, /did not answer within 300 ms/);
  assert.match(report.fix!, /Xid/);
});

test('without nvidia-smi the systeminformation controllers are shown and marked not usable', async () => {
  const report = await detectGpus({
    env: ENV_WITHOUT_NVIDIA_SMI,
    graphics: async () => ({ controllers: [{ vendor: 'NVIDIA Corporation', model: 'AD102 [GeForce RTX 4090]', vram: 24564 }] }),
  });
  assert.equal(report.source, 'systeminformation');
  assert.equal(report.usable, false);
  assert.equal(report.gpus[0]!.name, 'NVIDIA Corporation AD102 [GeForce RTX 4090]');
  assert.equal(report.gpus[0]!.memoryTotalMiB, 24564);
  assert.match(report.problem!, /nvidia-smi was not found on PATH/);
  assert.match(report.problem!, /not usable by the NVIDIA engine/);
  assert.match(report.fix!, /Install the NVIDIA driver/);
});

test('without nvidia-smi and with no controller at all the source is none', async () => {
  const report = await detectGpus({ env: ENV_WITHOUT_NVIDIA_SMI, graphics: async () => ({ controllers: [] }) });
  assert.equal(report.source, 'none');
  assert.deepEqual(report.gpus, []);
  assert.match(report.problem!, /no graphics controller was found/);
});

test('without nvidia-smi the real systeminformation fallback answers on this machine', async () => {
  const report = await detectGpus({ env: ENV_WITHOUT_NVIDIA_SMI });
  assert.ok(report.source === 'none' || report.source === 'systeminformation');
  assert.equal(report.source === 'none', report.gpus.length === 0);
  assert.equal(report.usable, false);
});

test('an explicit nvidia-smi path is used instead of PATH', async () => {
  const report = await detectGpus({
    env: ENV_WITHOUT_NVIDIA_SMI,
    nvidiaSmi: `${envWithScenario('a100-80gb').PATH!.split(':')[0]}/nvidia-smi`,
  });
  assert.equal(report.source, 'nvidia-smi');
  assert.equal(report.gpus[0]!.memoryTotalMiB, 81920);
});
