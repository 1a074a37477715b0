import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../helpers/cli.js';
import { scenarioDir } from '../../gpu/fixtures.js';

const home = () => mkdtempSync(join(tmpdir(), 'cs-llm-gpu-cli-'));
/** The CLI's own PATH with a fake nvidia-smi first (node runs from its absolute path). */
const withScenario = (name: string) => ({ CS_LLM_HOME: home(), PATH: `${scenarioDir(name)}:${process.env.PATH}` });

const ISSUE_FIELDS = [
  'index',
  'uuid',
  'name',
  'memoryTotalMiB',
  'memoryUsedMiB',
  'memoryFreeMiB',
  'utilizationPct',
  'temperatureC',
  'powerW',
  'driverVersion',
  'computeCapability',
];

test('gpu --json prints the source and every GPU with the issue fields', async () => {
  const result = await runCli(['gpu', '--json'], { env: withScenario('two-gpus') });
  assert.equal(result.exitCode, 0, String(result.stderr));
  const report = JSON.parse(String(result.stdout));
  assert.equal(report.source, 'nvidia-smi');
  assert.equal(report.usable, true);
  assert.equal(report.gpus.length, 2);
  for (const gpu of report.gpus) for (const field of ISSUE_FIELDS) assert.ok(field in gpu, `field ${field}`);
  assert.deepEqual(report.gpus[1], {
    index: 1,
    uuid: 'GPU-c47a9d12-6e5b-4f08-8b31-e2d05a9f6c18',
    name: 'NVIDIA GeForce RTX 3090',
    memoryTotalMiB: 24576,
    memoryUsedMiB: 4,
    memoryFreeMiB: 24179,
    utilizationPct: 0,
    temperatureC: 31,
    powerW: null,
    driverVersion: '550.120',
    computeCapability: '8.6',
    migMode: null,
    displayActive: false,
    migDevices: [],
  });
});

test('gpu --json with a failing driver says so with a fix and exits 0', async () => {
  const result = await runCli(['gpu', '--json'], { env: withScenario('driver-failure') });
  assert.equal(result.exitCode, 0);
  const report = JSON.parse(String(result.stdout));
  assert.deepEqual(report.gpus, []);
  assert.equal(report.usable, false);
  assert.match(report.problem, /couldn't communicate with the NVIDIA driver/);
  assert.ok(report.fix);
});

test('gpu --json without nvidia-smi reports the fallback source', async () => {
  const result = await runCli(['gpu', '--json'], { env: { CS_LLM_HOME: home(), PATH: '/nonexistent-cs-llm-bin' } });
  assert.equal(result.exitCode, 0, String(result.stderr));
  const report = JSON.parse(String(result.stdout));
  assert.ok(['systeminformation', 'none'].includes(report.source));
  assert.equal(report.usable, false);
  assert.match(report.problem, /nvidia-smi was not found/);
});

test('gpu without a terminal prints plain lines: a header, one line per GPU and the source', async () => {
  const result = await runCli(['gpu'], { env: withScenario('rtx4090-display') });
  assert.equal(result.exitCode, 0);
  const lines = String(result.stdout).trim().split('\n');
  assert.match(lines[0]!, /^GPU\s+NAME\s+MEMORY USED/);
  assert.match(
    lines[1]!,
    /^0\s+NVIDIA GeForce RTX 4090\s+1\.1 \/ 24\.0 GiB\s+22\.5 GiB\s+7%\s+44C\s+32 W\s+8\.9\s+drives a display\s+GPU-6f3c2a8e-1b7d-4c55-9e0a-2d4f8b1c7e93$/,
  );
  assert.equal(lines[2], 'source: nvidia-smi, driver 550.120; 1 GPU(s), usable by the NVIDIA engine');
  assert.ok(!String(result.stdout).includes('\u001b['), 'no color codes without a terminal');
});
