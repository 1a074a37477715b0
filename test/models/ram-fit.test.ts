import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findModel, loadCatalog } from '../../src/models/catalog.js';
import { cpuKvBytesPerToken, estimateRamFit, parseMeminfo, ramRequiredBytes, RUNTIME_BYTES } from '../../src/models/ram-fit.js';
import { runCli } from '../helpers/cli.js';

const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
const catalog = loadCatalog();
const tiny = findModel(catalog, 'tiny-memory');
const ram = (availableGiB: number) => ({ totalBytes: 32 * GiB, availableBytes: availableGiB * GiB });
/** A made-up 7B-class GGUF: 4.4 GiB of weights, 28 layers x 4 KV heads x 128 (Qwen2.5-7B's geometry). */
const big = {
  ...tiny,
  id: 'big',
  weightsBytes: 4.4 * GiB,
  layers: 28,
  kvHeads: 4,
  attentionHeads: 28,
  headDim: 128,
  maxContext: 32768,
  parameters: 7.6e9,
};

test('the KV cache per token is layers x KV heads x head dim x K and V x 2 bytes', () => {
  assert.equal(cpuKvBytesPerToken(tiny), 4 * 4 * 48 * 2 * 2);
  assert.equal(cpuKvBytesPerToken(big), 28 * 4 * 128 * 2 * 2);
  assert.equal(ramRequiredBytes(tiny, 512, 1), Math.ceil(tiny.weightsBytes * 1.1 + RUNTIME_BYTES + 3072 * 512));
});

test('the tiny model fits anywhere at its own context; a big one gets a shorter context when RAM is short', () => {
  const fit = estimateRamFit(tiny, ram(1));
  assert.equal(fit.verdict, 'fits');
  assert.equal(fit.maxModelLen, 512);
  assert.equal(fit.maxNumSeqs, 1);
  assert.equal(estimateRamFit(big, ram(16)).maxModelLen, 32768);
  const short = estimateRamFit(big, ram(6.5));
  assert.equal(short.verdict, 'fits');
  assert.ok(short.maxModelLen! < 32768 && short.maxModelLen! >= 512, String(short.maxModelLen));
});

test('not enough RAM is "no" with the figures, barely enough is "tight"', () => {
  const no = estimateRamFit(big, ram(3));
  assert.equal(no.verdict, 'no');
  assert.equal(no.maxModelLen, null);
  assert.match(
    no.reason,
    /^does not fit: needs 5\.\d GiB \(weights 4\.4 GiB \+ KV cache \d+ MiB for 512 tokens x 1 sequence\(s\) \+ runtime\) of 3\.0 GiB available RAM/,
  );
  const tight = estimateRamFit(big, { totalBytes: 8 * GiB, availableBytes: ramRequiredBytes(big, 512, 1) + 10 * MiB });
  assert.equal(tight.verdict, 'tight');
  assert.equal(tight.maxModelLen, 512);
});

test('a context beyond the model is "no" whatever the RAM, and more sequences need more', () => {
  assert.match(estimateRamFit(tiny, ram(64), { context: 1024 }).reason, /context 1024 is larger than the model's context length 512/);
  assert.ok(ramRequiredBytes(big, 8192, 4) > ramRequiredBytes(big, 8192, 1));
  assert.equal(estimateRamFit(big, ram(16), { context: 8192, sequences: 4 }).maxNumSeqs, 4);
});

test('meminfo gives MemTotal and MemAvailable in bytes', () => {
  assert.deepEqual(parseMeminfo('MemTotal:       24683856 kB\nMemFree:         1000 kB\nMemAvailable:   21000000 kB\n'), {
    totalBytes: 24683856 * 1024,
    availableBytes: 21000000 * 1024,
  });
  assert.equal(parseMeminfo('nothing here'), null);
});

test('cs-llm models --engine cpu lists the GGUF models with a RAM verdict, and refuses another engine name', async () => {
  const env = { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-ramfit-')) };
  const run = await runCli(['models', '--engine', 'cpu', '--json'], { env });
  assert.equal(run.exitCode, 0, String(run.stderr));
  const body = JSON.parse(String(run.stdout)) as {
    models: Array<{ id: string; verdict: string; maxModelLen: number; file: string | null }>;
    recommended: string | null;
  };
  // The real GGUF models follow the tiny ones (their verdicts with a fixed RAM: test/models/catalog.gguf.test.ts).
  assert.deepEqual(body.models.map((m) => m.id).slice(0, 2), ['tiny-memory', 'tiny-chat']);
  for (const m of body.models.slice(0, 2)) {
    assert.equal(m.verdict, 'fits');
    assert.equal(m.maxModelLen, 512);
    assert.match(m.file ?? '', /models\/tiny-(memory|chat)\.gguf$/);
  }
  assert.ok(
    body.recommended !== null && body.models.some((m) => m.id === body.recommended && m.verdict === 'fits'),
    String(body.recommended),
  );
  const plain = await runCli(['models', '--engine', 'cpu'], { env });
  assert.match(String(plain.stdout), /^tiny-memory .* fits .*needs \d+ MiB \(weights 7 MiB/m);
  const bad = await runCli(['models', '--engine', 'tpu'], { env });
  assert.equal(bad.exitCode, 2);
  assert.match(String(bad.stderr), /--engine must be vllm or cpu, got "tpu"/);
});
