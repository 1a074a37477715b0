import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  estimateError,
  findMeasurement,
  measuredKvLookup,
  measurementsPath,
  readMeasurements,
  recordMeasurement,
  type Measurement,
} from '../../src/models/measurements.js';
import { findModel, loadCatalog } from '../../src/models/catalog.js';
import { estimateFit } from '../../src/models/fit.js';

const stateDir = () => join(mkdtempSync(join(tmpdir(), 'cs-llm-measure-')), 'state');

function measurement(over: Partial<Measurement> = {}): Measurement {
  return {
    gpuName: 'NVIDIA GeForce RTX 4090',
    gpuMemoryMiB: 24564,
    model: 'qwen3-14b-awq',
    revision: null,
    image: 'vllm/vllm-openai:v0.10.1.1',
    imageDigest: 'sha256:1111',
    flags: { gpuMemoryUtilization: 0.9, tensorParallel: 1, maxModelLen: 32768, maxNumSeqs: 8, extra: [] },
    kvCacheTokens: 75680,
    maxConcurrency: 2.31,
    weightsGiB: 9.29,
    availableKvGiB: 11.55,
    estimatedKvCacheTokens: 70765,
    measuredAt: '2026-11-29T05:00:00.000Z',
    ...over,
  };
}

test('a measurement is kept in a 0600 file in the state directory, and the same key replaces it', () => {
  const dir = stateDir();
  recordMeasurement(dir, measurement());
  assert.equal(statSync(measurementsPath(dir)).mode & 0o777, 0o600);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  recordMeasurement(dir, measurement({ kvCacheTokens: 75000, measuredAt: '2026-11-29T06:00:00.000Z' }));
  recordMeasurement(dir, measurement({ flags: { ...measurement().flags, maxModelLen: 8192 } }));
  const all = readMeasurements(dir);
  assert.equal(all.length, 2, 'another --max-model-len is another key; the same key was replaced');
  assert.equal(all.find((m) => m.flags.maxModelLen === 32768)!.kvCacheTokens, 75000);
});

test('a missing or damaged file is no measurements, not an error', () => {
  const dir = stateDir();
  assert.deepEqual(readMeasurements(dir), []);
  mkdirSync(dir, { recursive: true });
  writeFileSync(measurementsPath(dir), '{not json');
  assert.deepEqual(readMeasurements(dir), []);
  recordMeasurement(dir, measurement());
  assert.equal(readMeasurements(dir).length, 1);
});

test('the measurement for a plan: same GPU, model, utilization and tensor parallel; the same image first, then the newest', () => {
  const list = [
    measurement({ imageDigest: 'sha256:old', kvCacheTokens: 70000, measuredAt: '2026-11-01T00:00:00.000Z' }),
    measurement({ imageDigest: 'sha256:new', kvCacheTokens: 76000, measuredAt: '2026-11-30T00:00:00.000Z' }),
    measurement({ gpuMemoryMiB: 24576, kvCacheTokens: 1 }),
    measurement({ flags: { ...measurement().flags, gpuMemoryUtilization: 0.95 }, kvCacheTokens: 2 }),
    measurement({ flags: { ...measurement().flags, tensorParallel: 2 }, kvCacheTokens: 3 }),
  ];
  const query = {
    gpuName: 'NVIDIA GeForce RTX 4090',
    gpuMemoryMiB: 24564,
    model: 'qwen3-14b-awq',
    gpuMemoryUtilization: 0.9,
    tensorParallel: 1,
  };
  assert.equal(findMeasurement(list, query)?.kvCacheTokens, 76000);
  assert.equal(findMeasurement(list, { ...query, image: 'sha256:old' })?.kvCacheTokens, 70000);
  assert.equal(findMeasurement(list, { ...query, model: 'qwen3-8b-awq' }), null);
  assert.equal(estimateError(82000, 80000), 0.025);
  assert.equal(estimateError(1, 0), null);
});

test('with a measurement the fit plans with the KV cache vLLM reported, and keeps the formula for comparison', () => {
  const model = findModel(loadCatalog(), 'qwen3-14b-awq');
  const gpu = { index: 0, name: 'NVIDIA GeForce RTX 4090', memoryTotalMiB: 24564, memoryFreeMiB: null };
  const plain = estimateFit(model, [gpu]);
  assert.equal(plain.measured, false);
  assert.equal(plain.kvCacheTokens, plain.estimatedKvCacheTokens);
  const small = measuredKvLookup([measurement({ kvCacheTokens: 40000 })], 0.9);
  const measured = estimateFit(model, [gpu], { measuredKvTokens: small });
  assert.equal(measured.measured, true);
  assert.equal(measured.kvCacheTokens, 40000);
  assert.equal(measured.estimatedKvCacheTokens, plain.estimatedKvCacheTokens);
  assert.ok(measured.maxNumSeqs! < plain.maxNumSeqs!, 'a smaller measured cache holds fewer sequences');
  assert.match(measured.reason, /KV cache of 39k tokens \(measured by vLLM\)/);
  // Another card, or GPUs of two kinds, have no measurement.
  assert.equal(small(model, [{ ...gpu, memoryTotalMiB: 24576 }], 1), null);
  assert.equal(small(model, [gpu, { ...gpu, name: 'NVIDIA GeForce RTX 3090' }], 2), null);
});
