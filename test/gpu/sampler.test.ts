import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from '../helpers/cli.js';
import { startGpuSampler, type GpuSample, type GpuSampler } from '../../src/gpu/sampler.js';

const LOOP = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'loop', 'nvidia-smi');
const HANG = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'hang', 'nvidia-smi');
const PATH_WITHOUT_SMI = '/nonexistent-bin';

function nextEvent<T>(register: (fn: (value: T) => void) => void, timeoutMs = 20_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), timeoutMs);
    register((value) => {
      clearTimeout(timer);
      resolve(value);
    });
  });
}

test('one looping nvidia-smi feeds per-GPU samples, in bytes and ratios', async (t) => {
  let onSample: (s: GpuSample) => void = () => {};
  const seen = new Set<number>();
  const both = nextEvent<void>((done) => {
    onSample = (s) => {
      seen.add(s.index);
      if (seen.size === 2) done();
    };
  });
  const sampler = startGpuSampler({ nvidiaSmi: LOOP, intervalMs: 100, onSample: (s) => onSample(s) });
  t.after(() => sampler.stop());
  await both;
  const [first, second] = sampler.current();
  assert.equal(first!.name, 'NVIDIA GeForce RTX 4090');
  assert.equal(first!.memoryTotalBytes, 24564 * 1024 * 1024);
  assert.equal(first!.memoryUsedBytes, 18742 * 1024 * 1024);
  assert.equal(first!.utilization, 0.87);
  assert.equal(first!.temperatureC, 71);
  assert.equal(first!.powerW, 312.45);
  assert.equal(second!.index, 1);
  assert.equal(second!.powerW, null, '[N/A] power is unknown, not zero');
  assert.equal(sampler.starts, 1, 'one process serves every sample');
});

test('a dead nvidia-smi is started again after a pause, and its figures are dropped meanwhile', async (t) => {
  let onExit: (info: { code: number | null }) => void = () => {};
  let onSample: () => void = () => {};
  let sampler: GpuSampler | null = null;
  const exited = nextEvent<{ code: number | null }>((fn) => (onExit = fn));
  sampler = startGpuSampler({
    nvidiaSmi: LOOP,
    intervalMs: 100,
    backoffMs: 300,
    env: { ...process.env, FAKE_NVIDIA_SMI_EXIT_AFTER: '1' },
    onExit: (info) => onExit(info),
    onSample: () => onSample(),
  });
  t.after(() => sampler!.stop());
  const exit = await exited;
  assert.equal(exit.code, 15);
  assert.deepEqual(sampler.current(), [], 'no stale figures while nvidia-smi is down');
  await nextEvent<void>((fn) => (onSample = fn));
  assert.ok(sampler.starts >= 2, `restarted (${sampler.starts} starts)`);
  assert.ok(sampler.current().length > 0);
});

test('without nvidia-smi the sampler holds no figures and keeps trying quietly', async (t) => {
  let onExit: (info: { error?: string; restartInMs: number }) => void = () => {};
  const exited = nextEvent<{ error?: string; restartInMs: number }>((fn) => (onExit = fn));
  const sampler = startGpuSampler({ env: { PATH: PATH_WITHOUT_SMI }, backoffMs: 50, onExit: (info) => onExit(info) });
  t.after(() => sampler.stop());
  const info = await exited;
  assert.match(info.error ?? '', /not found/);
  assert.equal(info.restartInMs, 50);
  assert.deepEqual(sampler.current(), []);
});

test('without nvidia-smi on PATH the sampler says so, and one that appears there later is found at the next try', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-smi-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'bin');
  let onExit: (info: { error?: string }) => void = () => {};
  const missing = nextEvent<{ error?: string }>((fn) => (onExit = fn));
  let onSample: () => void = () => {};
  const sampled = nextEvent<void>((fn) => (onSample = fn));
  const sampler = startGpuSampler({
    env: { PATH: bin },
    intervalMs: 100,
    backoffMs: 50,
    onExit: (info) => onExit(info),
    onSample: () => onSample(),
  });
  t.after(() => sampler.stop());
  assert.match((await missing).error ?? '', /nvidia-smi not found/);
  // The driver arrives: the looping stand-in (with its samples beside it) under the PATH's directory.
  symlinkSync(dirname(LOOP), bin);
  await sampled;
  assert.ok(sampler.current().length > 0);
});

test('stop ends the nvidia-smi process and no restart follows', async () => {
  let onSample: () => void = () => {};
  const sampled = nextEvent<void>((fn) => (onSample = fn));
  const sampler = startGpuSampler({ nvidiaSmi: LOOP, intervalMs: 100, backoffMs: 50, onSample: () => onSample() });
  await sampled;
  await sampler.stop();
  const starts = sampler.starts;
  assert.deepEqual(sampler.current(), []);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(sampler.starts, starts);
});

test('an nvidia-smi that hangs without printing is killed and started again', async (t) => {
  let onExit: (info: { signal: string | null }) => void = () => {};
  const exited = nextEvent<{ signal: string | null }>((fn) => (onExit = fn));
  const sampler = startGpuSampler({ nvidiaSmi: HANG, stallMs: 300, backoffMs: 50, onExit: (info) => onExit(info) });
  t.after(() => sampler.stop());
  const info = await exited;
  assert.equal(info.signal, 'SIGKILL');
  assert.deepEqual(sampler.current(), []);
  for (let i = 0; i < 200 && sampler.starts < 2; i++) await new Promise((resolve) => setTimeout(resolve, 25));
  assert.ok(sampler.starts >= 2, `started again (${sampler.starts} starts)`);
});
