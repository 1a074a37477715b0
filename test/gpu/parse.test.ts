import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  GPU_QUERY_FIELDS,
  GPU_QUERY_FIELDS_LEGACY,
  classifyNvidiaSmiFailure,
  computeCapabilityNumber,
  parseNvidiaSmiCsv,
  parseNvidiaSmiList,
} from '../../src/gpu/parse.js';
import { EnvironmentError } from '../../src/core/errors.js';
import { recorded } from './fixtures.js';

test('a recorded RTX 4090 line parses into numbers, strings and the display flag', () => {
  const [gpu, ...rest] = parseNvidiaSmiCsv(recorded('rtx4090-display'));
  assert.equal(rest.length, 0);
  assert.deepEqual(gpu, {
    index: 0,
    uuid: 'GPU-6f3c2a8e-1b7d-4c55-9e0a-2d4f8b1c7e93',
    name: 'NVIDIA GeForce RTX 4090',
    memoryTotalMiB: 24564,
    memoryUsedMiB: 1094,
    memoryFreeMiB: 23084,
    utilizationPct: 7,
    temperatureC: 44,
    powerW: 31.62,
    driverVersion: '550.120',
    computeCapability: '8.9',
    migMode: null,
    displayActive: true,
    migDevices: [],
  });
});

test('two GPUs give two entries in nvidia-smi order, and [Not Supported] becomes null', () => {
  const gpus = parseNvidiaSmiCsv(recorded('two-gpus'));
  assert.deepEqual(
    gpus.map((g) => [g.index, g.name, g.memoryTotalMiB, g.powerW]),
    [
      [0, 'NVIDIA GeForce RTX 3090', 24576, 21.48],
      [1, 'NVIDIA GeForce RTX 3090', 24576, null],
    ],
  );
  assert.equal(gpus[1]!.displayActive, false);
});

test('[N/A] utilization on a MIG GPU is null and the MIG mode is read', () => {
  const [gpu] = parseNvidiaSmiCsv(recorded('mig'));
  assert.equal(gpu!.utilizationPct, null);
  assert.equal(gpu!.migMode, 'enabled');
  assert.equal(computeCapabilityNumber(gpu!), 8);
});

test('the legacy field list parses an old driver line with compute capability unknown', () => {
  const [gpu] = parseNvidiaSmiCsv(recorded('old-driver'), GPU_QUERY_FIELDS_LEGACY);
  assert.equal(gpu!.name, 'Tesla T4');
  assert.equal(gpu!.memoryTotalMiB, 15109);
  assert.equal(gpu!.computeCapability, null);
  assert.equal(gpu!.migMode, null);
  assert.equal(computeCapabilityNumber(gpu!), null);
});

test('every bracketed placeholder and a bare N/A read as unknown', () => {
  const line =
    '3, [N/A], Tesla V100, [Unknown Error], [Insufficient Permissions], N/A, [GPU requires reset], [Not Supported], [N/A], 535.1, 7.0, [N/A], [N/A]';
  const [gpu] = parseNvidiaSmiCsv(line);
  assert.equal(gpu!.index, 3);
  assert.equal(gpu!.uuid, null);
  assert.equal(gpu!.memoryTotalMiB, null);
  assert.equal(gpu!.memoryUsedMiB, null);
  assert.equal(gpu!.memoryFreeMiB, null);
  assert.equal(gpu!.utilizationPct, null);
  assert.equal(gpu!.temperatureC, null);
  assert.equal(gpu!.displayActive, null);
});

test('blank lines and Windows line ends are ignored', () => {
  const gpus = parseNvidiaSmiCsv(`\r\n${recorded('two-gpus').replace(/\n/g, '\r\n')}\r\n\r\n`);
  assert.equal(gpus.length, 2);
  assert.equal(gpus[1]!.driverVersion, '550.120');
});

test('a line with the wrong number of values is refused with the line quoted', () => {
  assert.throws(
    () => parseNvidiaSmiCsv('0, GPU-x, NVIDIA GeForce RTX 4090, 24564'),
    (err: unknown) =>
      err instanceof EnvironmentError &&
      err.message.includes(`4 values where ${GPU_QUERY_FIELDS.length} were asked for`) &&
      Boolean(err.next),
  );
});

test('nvidia-smi -L output gives the MIG instances of each GPU', () => {
  const byGpu = parseNvidiaSmiList(recorded('mig', 'list.txt'));
  assert.deepEqual(byGpu.get(0), [
    { profile: '3g.40gb', uuid: 'MIG-5c8e1a3f-2b7d-5e94-a06c-d1f3b8e2c947' },
    { profile: '3g.40gb', uuid: 'MIG-e03b7d29-4a1c-58f6-9b2e-7c5a0d4f1e86' },
  ]);
  assert.deepEqual(
    parseNvidiaSmiList('GPU 0: NVIDIA GeForce RTX 4090 (UUID: GPU-6f3c)\nGPU 1: NVIDIA GeForce RTX 4090 (UUID: GPU-7a1b)\n').get(1),
    [],
  );
});

test('the driver failure message is classified as a driver problem with an install/load fix', () => {
  const failure = classifyNvidiaSmiFailure(
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
    9,
  );
  assert.equal(failure.kind, 'driver');
  assert.match(failure.problem, /cannot talk to the NVIDIA driver/);
  assert.match(failure.problem, /couldn't communicate/);
  assert.match(failure.fix, /modprobe nvidia/);
});

test('other failures are told apart by message or exit code', () => {
  assert.equal(classifyNvidiaSmiFailure('No devices were found', 6).kind, 'no-devices');
  assert.equal(classifyNvidiaSmiFailure('Failed to initialize NVML: Insufficient Permissions', 4).kind, 'permission');
  assert.equal(classifyNvidiaSmiFailure('Failed to initialize NVML: Driver/library version mismatch', 18).kind, 'version-mismatch');
  assert.equal(
    classifyNvidiaSmiFailure(
      "NVIDIA-SMI couldn't find libnvidia-ml.so library in your system. Please make sure that the NVIDIA Display Driver is properly installed and present in your system.",
      12,
    ).kind,
    'nvml-missing',
  );
  assert.equal(classifyNvidiaSmiFailure('Unable to determine the device handle for GPU0000:01:00.0: GPU is lost.', 15).kind, 'gpu-lost');
  assert.equal(classifyNvidiaSmiFailure('Field "compute_cap" is not a valid field to query.', 2).kind, 'invalid-field');
  const other = classifyNvidiaSmiFailure('something new', 255);
  assert.equal(other.kind, 'other');
  assert.match(other.problem, /exit code 255/);
});
