import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findModel, loadCatalog } from '../../src/models/catalog.js';
import {
  RUNTIME_OVERHEAD_BYTES,
  estimateCatalog,
  estimateFit,
  kvBytesPerToken,
  recommendModel,
  type FitGpu,
} from '../../src/models/fit.js';
import { parseNvidiaSmiCsv } from '../../src/gpu/parse.js';
import { recorded } from '../gpu/fixtures.js';

const GiB = 1024 ** 3;
const catalog = loadCatalog();
const model = (id: string) => findModel(catalog, id);

/** The recorded RTX 4090 that drives a display (1 GiB already used). */
const rtx4090 = parseNvidiaSmiCsv(recorded('rtx4090-display'));
const twoRtx3090 = parseNvidiaSmiCsv(recorded('two-gpus'));
const a100 = parseNvidiaSmiCsv(recorded('a100-80gb'));
const card = (gib: number, extra: Partial<FitGpu> = {}): FitGpu => ({
  name: `${gib} GiB card`,
  memoryTotalMiB: gib * 1024,
  memoryFreeMiB: null,
  ...extra,
});

test('Qwen2.5-32B-AWQ on a 24 GB card is tight: 8k context with a few sequences', () => {
  for (const gpus of [rtx4090, [card(24)]]) {
    const fit = estimateFit(model('qwen2.5-32b-instruct-awq'), gpus);
    assert.equal(fit.verdict, 'tight');
    assert.equal(fit.maxModelLen, 8192);
    assert.ok(fit.maxNumSeqs! >= 2 && fit.maxNumSeqs! <= 8, `a few sequences, got ${fit.maxNumSeqs}`);
    assert.ok(fit.requiredBytes <= fit.usableBytes);
    assert.match(fit.reason, /at 8k context/);
    assert.match(fit.reason, /16k context would need/);
  }
});

test('Qwen2.5-14B-AWQ on a 24 GB card is comfortable at 16k-32k context', () => {
  const fit = estimateFit(model('qwen2.5-14b-instruct-awq'), rtx4090);
  assert.equal(fit.verdict, 'fits');
  assert.ok(fit.maxModelLen! >= 16384 && fit.maxModelLen! <= 32768, `context ${fit.maxModelLen}`);
  assert.ok(fit.maxNumSeqs! >= 4);
});

test('Qwen2.5-7B-AWQ and Llama-3.1-8B-AWQ are easy on a 24 GB card', () => {
  for (const id of ['qwen2.5-7b-instruct-awq', 'llama-3.1-8b-instruct-awq-int4']) {
    const fit = estimateFit(model(id), rtx4090);
    assert.equal(fit.verdict, 'fits', id);
    assert.ok(fit.maxModelLen! >= 32768, `${id} context ${fit.maxModelLen}`);
    assert.ok(fit.maxNumSeqs! >= 4, `${id} sequences ${fit.maxNumSeqs}`);
    assert.ok(fit.usableBytes - fit.requiredBytes > 5 * GiB, `${id} leaves room`);
  }
});

test('the estimate adds weights, runtime overhead and one full-length sequence of KV cache', () => {
  const m = model('qwen2.5-14b-instruct-awq');
  const fit = estimateFit(m, [card(24)], { context: 16384 });
  assert.equal(fit.requiredBytes, Math.round(m.weightsBytes + RUNTIME_OVERHEAD_BYTES + 16384 * 192 * 1024));
  assert.equal(fit.usableBytes, Math.floor(24 * GiB * 0.9));
  assert.equal(fit.kvCacheTokens, Math.floor((fit.usableBytes - m.weightsBytes - RUNTIME_OVERHEAD_BYTES) / (192 * 1024)));
});

test('asking for more context than fits says what it needs, what is usable and what would fit', () => {
  const fit = estimateFit(model('qwen2.5-32b-instruct-awq'), rtx4090, { context: 32768 });
  assert.equal(fit.verdict, 'no');
  assert.equal(fit.maxModelLen, null);
  assert.ok(fit.requiredBytes > fit.usableBytes);
  assert.match(
    fit.reason,
    /^needs \d+\.\d GiB at 32k context; \d+\.\d GiB usable on GPU 0 \(NVIDIA GeForce RTX 4090\)\. Fits at 8k with \d sequences$/,
  );
});

test('a context beyond the model maximum is refused with the maximum', () => {
  const fit = estimateFit(model('qwen2.5-7b-instruct-awq'), a100, { context: 65536 });
  assert.equal(fit.verdict, 'no');
  assert.match(fit.reason, /supports at most 32k context/);
});

test('asked sequences are kept and the context shrinks to hold them', () => {
  const fit = estimateFit(model('qwen2.5-32b-instruct-awq'), [card(24)], { maxNumSeqs: 16 });
  assert.equal(fit.maxNumSeqs, 16);
  assert.ok(fit.maxModelLen! < 8192);
  assert.equal(fit.verdict, 'tight');
});

test('less free memory at start than total x utilization is a "no", as vLLM refuses to start', () => {
  const busy: FitGpu = { index: 0, name: 'NVIDIA GeForce RTX 4090', memoryTotalMiB: 24564, memoryFreeMiB: 20000 };
  const fit = estimateFit(model('qwen2.5-7b-instruct-awq'), [busy]);
  assert.equal(fit.verdict, 'no');
  assert.match(fit.reason, /19\.5 GiB free at start/);
  assert.match(fit.reason, /refuses to start with less than 0\.9 x 24\.0 GiB = 21\.6 GiB free/);
  assert.match(fit.reason, /gpu-memory-utilization 0\.80/);
  assert.equal(estimateFit(model('qwen2.5-7b-instruct-awq'), [busy], { gpuMemoryUtilization: 0.8 }).verdict, 'fits');
});

test('a display card with about 1 GiB used still starts at utilization 0.9', () => {
  assert.equal(rtx4090[0]!.displayActive, true);
  assert.notEqual(estimateFit(model('qwen2.5-32b-instruct-awq'), rtx4090).verdict, 'no');
});

test('weights that do not fit at all say so', () => {
  const fit = estimateFit(model('qwen2.5-32b-instruct-awq'), [card(16)]);
  assert.equal(fit.verdict, 'no');
  assert.match(fit.reason, /weights \(18\.0 GiB\) and runtime \(1\.5 GiB\) alone need 19\.5 GiB; 14\.4 GiB usable on GPU 0/);
});

test('a model that does not fit one GPU is split tensor parallel across two equal GPUs', () => {
  const m = model('qwen2.5-32b-instruct-awq');
  const fit = estimateFit(m, twoRtx3090);
  assert.equal(fit.tensorParallel, 2);
  assert.deepEqual(fit.gpuIndexes, [0, 1]);
  assert.equal(fit.verdict, 'fits');
  assert.ok(fit.maxModelLen! >= 16384);
  assert.match(fit.reason, /per GPU on GPUs 0,1 \(2 x NVIDIA GeForce RTX 3090, tensor parallel 2\)/);
  assert.equal(kvBytesPerToken(m, 2), kvBytesPerToken(m) / 2);
  // A model that fits one GPU stays on one.
  assert.equal(estimateFit(model('qwen2.5-7b-instruct-awq'), twoRtx3090).tensorParallel, 1);
});

test('tensor parallel needs enough GPUs and heads that divide among them', () => {
  const asked = estimateFit(model('qwen2.5-14b-instruct-awq'), rtx4090, { tensorParallel: 2 });
  assert.equal(asked.verdict, 'no');
  assert.match(asked.reason, /tensor parallel 2 needs 2 GPUs; 1 given/);
  const eight = Array.from({ length: 8 }, (_, index) => ({ ...card(24), index }));
  const split = estimateFit(model('qwen2.5-7b-instruct-awq'), eight, { tensorParallel: 8 });
  assert.equal(split.verdict, 'no');
  assert.match(split.reason, /28 attention heads and 4 KV heads, which do not split across 8 GPUs/);
  assert.equal(kvBytesPerToken(model('qwen2.5-7b-instruct-awq'), 8), kvBytesPerToken(model('qwen2.5-7b-instruct-awq'), 4));
});

test('no GPU, an unknown memory size or an old compute capability give "no" with the reason', () => {
  const none = estimateFit(model('qwen2.5-7b-instruct-awq'), []);
  assert.equal(none.verdict, 'no');
  assert.match(none.reason, /--vram/);
  const unknown = estimateFit(model('qwen2.5-7b-instruct-awq'), [{ name: 'mystery', memoryTotalMiB: null, memoryFreeMiB: null }]);
  assert.match(unknown.reason, /memory size on GPU 0 \(mystery\) is unknown/);
  const pascal = estimateFit(model('qwen2.5-7b-instruct-awq'), [card(24, { name: 'Tesla P40', computeCapability: '6.1' })]);
  assert.equal(pascal.verdict, 'no');
  assert.match(pascal.reason, /GPU 0 \(Tesla P40\) has compute capability 6\.1; AWQ kernels need 7\.5 or newer/);
});

test('more VRAM never gives a shorter context or fewer sequences', () => {
  for (const m of catalog.models) {
    let previous = { len: 0, seqs: 0 };
    for (let gib = 6; gib <= 96; gib += 2) {
      const fit = estimateFit(m, [card(gib)]);
      const now = { len: fit.maxModelLen ?? 0, seqs: fit.maxNumSeqs ?? 0 };
      assert.ok(now.len >= previous.len, `${m.id} at ${gib} GiB: context ${now.len} < ${previous.len}`);
      if (now.len === previous.len) assert.ok(now.seqs >= previous.seqs, `${m.id} at ${gib} GiB: sequences fell`);
      previous = now;
    }
  }
});

test('the Qwen3 AWQ releases and Llama 3.1 70B land where their size says: 24 GB, two 24 GB cards, 80 GB', () => {
  const on4090 = (id: string) => estimateFit(model(id), rtx4090);
  assert.equal(on4090('qwen3-8b-awq').verdict, 'fits');
  assert.equal(on4090('qwen3-14b-awq').verdict, 'fits');
  assert.equal(on4090('qwen3-14b-awq').maxModelLen, 32768);
  assert.equal(on4090('qwen3-32b-awq').verdict, 'tight');
  assert.equal(on4090('qwen3-32b-awq').maxModelLen, 8192);
  assert.equal(on4090('llama-3.1-70b-instruct-awq-int4').verdict, 'no');
  const split = estimateFit(model('qwen3-32b-awq'), twoRtx3090);
  assert.equal(split.verdict, 'fits');
  assert.equal(split.tensorParallel, 2);
  const big = estimateFit(model('llama-3.1-70b-instruct-awq-int4'), a100);
  assert.equal(big.verdict, 'fits');
  assert.equal(big.tensorParallel, 1);
  assert.equal(big.maxModelLen, 65536);
});

test('the recommendation is the largest model that fits with room', () => {
  assert.equal(recommendModel(catalog, rtx4090)?.model.id, 'qwen3-14b-awq');
  assert.equal(recommendModel(catalog, a100)?.model.id, 'llama-3.1-70b-instruct-awq-int4');
  assert.equal(recommendModel(catalog, twoRtx3090)?.model.id, 'qwen3-32b-awq');
  assert.equal(recommendModel(catalog, [card(8)]), null);
  assert.equal(recommendModel(catalog, []), null);
});

test('the catalog estimate covers every vLLM model and skips CPU-only entries', () => {
  const withCpu = loadCatalog({
    userModels: [{ ...model('qwen2.5-7b-instruct-awq'), id: 'cpu-only', engines: ['cpu'], gguf: { file: 'x.gguf' } }],
  });
  const ids = estimateCatalog(withCpu, rtx4090).map((f) => f.model.id);
  assert.ok(!ids.includes('cpu-only'));
  assert.equal(ids.length, catalog.models.filter((m) => m.engines.includes('vllm')).length);
});

test('a model that runs on no single GPU nor split across them keeps the one-GPU reason and says both were tried', () => {
  const small = [card(8, { index: 0 }), card(8, { index: 1 })];
  const fit = estimateFit(model('qwen2.5-32b-instruct-awq'), small);
  assert.equal(fit.verdict, 'no');
  assert.equal(fit.tensorParallel, 1);
  assert.match(
    fit.reason,
    /^weights \(18\.0 GiB\) and runtime \(1\.5 GiB\) alone need 19\.5 GiB; 7\.2 GiB usable on GPU 0 .*; split across up to 2 GPUs \(tensor parallel\) it does not run either$/,
  );
});
