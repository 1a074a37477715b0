import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/core/errors.js';
import { findModel, loadCatalog } from '../../src/models/catalog.js';
import { cpuKvBytesPerToken, estimateRamFit, ramRequiredBytes, RUNTIME_BYTES } from '../../src/models/ram-fit.js';
import { runCli } from '../helpers/cli.js';

const KiB = 1024;
const MiB = 1024 ** 2;
const GiB = 1024 ** 3;
/** A machine with 4 GiB available, as the issue asks; total does not enter the estimate. */
const FOUR_GIB = { totalBytes: 8 * GiB, availableBytes: 4 * GiB };
const catalog = loadCatalog();

const QWEN_GGUF = [
  // id, repo, file, bytes, layers, KV heads, head dim, licence
  [
    'qwen2.5-0.5b-instruct-q4_k_m',
    'bartowski/Qwen2.5-0.5B-Instruct-GGUF',
    'Qwen2.5-0.5B-Instruct-Q4_K_M.gguf',
    397808192,
    24,
    2,
    64,
    'Apache-2.0',
  ],
  [
    'qwen2.5-1.5b-instruct-q4_k_m',
    'bartowski/Qwen2.5-1.5B-Instruct-GGUF',
    'Qwen2.5-1.5B-Instruct-Q4_K_M.gguf',
    986048768,
    28,
    2,
    128,
    'Apache-2.0',
  ],
  [
    'qwen2.5-3b-instruct-q4_k_m',
    'bartowski/Qwen2.5-3B-Instruct-GGUF',
    'Qwen2.5-3B-Instruct-Q4_K_M.gguf',
    1929903264,
    36,
    2,
    128,
    'Qwen Research License',
  ],
  [
    'qwen2.5-7b-instruct-q4_k_m',
    'bartowski/Qwen2.5-7B-Instruct-GGUF',
    'Qwen2.5-7B-Instruct-Q4_K_M.gguf',
    4683074240,
    28,
    4,
    128,
    'Apache-2.0',
  ],
] as const;

test('the catalog holds the four Qwen2.5 Instruct Q4_K_M GGUFs for the cpu engine, each with its file, size, sha256 and sources', () => {
  for (const [id, repo, file, bytes, layers, kvHeads, headDim, license] of QWEN_GGUF) {
    const model = findModel(catalog, id);
    assert.deepEqual(model.engines, ['cpu']);
    assert.equal(model.quantization, 'gguf');
    assert.equal(model.gguf?.hfRepo, repo);
    assert.equal(model.gguf?.file, file);
    assert.equal(model.gguf?.sizeBytes, bytes);
    assert.equal(model.weightsBytes, bytes, 'the weights are the file');
    assert.match(model.gguf?.sha256 ?? '', /^[0-9a-f]{64}$/);
    assert.deepEqual([model.layers, model.kvHeads, model.headDim, model.maxContext], [layers, kvHeads, headDim, 32768]);
    assert.equal(model.license, license);
    assert.match(model.source ?? '', /Hugging Face's API\/LFS metadata/);
    assert.match(model.source ?? '', /config\.json/);
  }
  assert.match(findModel(catalog, 'qwen2.5-3b-instruct-q4_k_m').notes ?? '', /qwen-research/);
  assert.match(findModel(catalog, 'qwen2.5-7b-instruct-q4_k_m').notes ?? '', /YaRN/);
});

test('with 4 GiB available the 0.5B and 1.5B fit at their full context, the 3B at a shorter one, and the 7B does not fit and says why', () => {
  const fit = (id: string) => estimateRamFit(findModel(catalog, id), FOUR_GIB);

  // By hand, 0.5B: KV per token = 24 layers x 2 KV heads x 64 head dim x 2 (K and V) x 2 bytes (f16) = 12,288 B = 12 KiB;
  // at 32768 tokens x 1 sequence that is 384 MiB (402,653,184 B). Total = 397,808,192 x 1.1 (437,589,011.2) + 160 MiB
  // (167,772,160) + 402,653,184 = 1,008,014,355.2, rounded up to 1,008,014,356 B (0.94 GiB), under 80% of 4 GiB
  // (3.2 GiB): "fits" at 32k.
  const small = findModel(catalog, 'qwen2.5-0.5b-instruct-q4_k_m');
  assert.equal(cpuKvBytesPerToken(small), 12 * KiB);
  assert.equal(ramRequiredBytes(small, 32768, 1), 1_008_014_356);
  assert.equal(Math.ceil(397_808_192 * 1.1 + RUNTIME_BYTES + 384 * MiB), 1_008_014_356);
  const half = fit('qwen2.5-0.5b-instruct-q4_k_m');
  assert.deepEqual([half.verdict, half.maxModelLen, half.maxNumSeqs], ['fits', 32768, 1]);
  assert.match(
    half.reason,
    /^needs 961 MiB \(weights 379 MiB \+ KV cache 384 MiB for 32768 tokens x 1 sequence\(s\) \+ runtime\) of 4\.0 GiB available RAM$/,
  );

  // 1.5B: 28 x 2 x 128 x 2 x 2 = 28 KiB per token, 896 MiB at 32k; about 2.0 GiB in all.
  const oneAndHalf = fit('qwen2.5-1.5b-instruct-q4_k_m');
  assert.deepEqual([oneAndHalf.verdict, oneAndHalf.maxModelLen], ['fits', 32768]);
  assert.match(oneAndHalf.reason, /KV cache 896 MiB for 32768 tokens/);

  // 3B: 36 KiB per token; at 32k 3.26 GiB is over the comfortable 3.2 GiB, at 16k 2.7 GiB is under it.
  const three = fit('qwen2.5-3b-instruct-q4_k_m');
  assert.deepEqual([three.verdict, three.maxModelLen], ['fits', 16384]);

  // 7B: the weights alone (4.4 GiB, x 1.1 = 4.8 GiB) are more than 4 GiB, whatever the context.
  const seven = fit('qwen2.5-7b-instruct-q4_k_m');
  assert.equal(seven.verdict, 'no');
  assert.equal(seven.maxModelLen, null);
  assert.match(
    seven.reason,
    /^does not fit: needs 5\.0 GiB \(weights 4\.4 GiB \+ KV cache 28 MiB for 512 tokens x 1 sequence\(s\) \+ runtime\) of 4\.0 GiB available RAM; free memory or pick a smaller model$/,
  );
  // With 8 GiB it fits at 16k: 56 KiB per token is 1.75 GiB of KV at 32k (6.7 GiB in all, over 80% of 8 GiB), 0.9 GiB at 16k.
  const sevenOn8 = estimateRamFit(findModel(catalog, 'qwen2.5-7b-instruct-q4_k_m'), { totalBytes: 16 * GiB, availableBytes: 8 * GiB });
  assert.deepEqual([sevenOn8.verdict, sevenOn8.maxModelLen], ['fits', 16384]);
});

test('cs-llm models --engine cpu --ram 4GiB shows every GGUF model with its verdict and reason', async () => {
  const env = {
    CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-gguf-cat-')),
    CS_LLM_GGUF_DIR: mkdtempSync(join(tmpdir(), 'cs-llm-gguf-dir-')),
  };
  const run = await runCli(['models', '--engine', 'cpu', '--ram', '4GiB', '--json'], { env });
  assert.equal(run.exitCode, 0, String(run.stderr));
  const body = JSON.parse(String(run.stdout)) as {
    models: Array<{ id: string; verdict: string; maxModelLen: number | null; reason: string; file: string | null }>;
    recommended: string | null;
  };
  const byId = new Map(body.models.map((m) => [m.id, m]));
  assert.deepEqual(
    body.models.map((m) => m.id),
    ['tiny-memory', 'tiny-chat', ...QWEN_GGUF.map(([id]) => id)],
  );
  assert.equal(byId.get('qwen2.5-0.5b-instruct-q4_k_m')!.verdict, 'fits');
  assert.equal(byId.get('qwen2.5-1.5b-instruct-q4_k_m')!.verdict, 'fits');
  assert.equal(byId.get('qwen2.5-7b-instruct-q4_k_m')!.verdict, 'no');
  assert.match(byId.get('qwen2.5-7b-instruct-q4_k_m')!.reason, /of 4\.0 GiB available RAM/);
  assert.equal(byId.get('qwen2.5-7b-instruct-q4_k_m')!.file, null, 'not downloaded here');
  assert.equal(
    (byId.get('qwen2.5-7b-instruct-q4_k_m') as unknown as { download: string }).download,
    'https://huggingface.co/bartowski/Qwen2.5-7B-Instruct-GGUF/resolve/main/Qwen2.5-7B-Instruct-Q4_K_M.gguf',
  );
  assert.equal(body.recommended, 'qwen2.5-3b-instruct-q4_k_m');

  const plain = await runCli(['models', '--engine', 'cpu', '--ram', '4GiB'], { env });
  assert.equal(plain.exitCode, 0, String(plain.stderr));
  const out = String(plain.stdout);
  assert.match(out, /^planning for: 4\.0 GiB of available RAM \(--ram/m);
  assert.match(
    out,
    /^qwen2\.5-7b-instruct-q4_k_m\s+4\.4 GiB\s+no\s+-\s+-\s+5\.0 GiB\s+missing \(Qwen2\.5-7B-Instruct-Q4_K_M\.gguf\)\s+does not fit: /m,
  );
  assert.match(out, /^qwen2\.5-0\.5b-instruct-q4_k_m\s+379\.4 MiB\s+fits\s+32k\s+1\s+/m);
  assert.match(
    out,
    /^missing files: cs-llm models pull <id> downloads one and checks it, e\.g\. cs-llm models pull qwen2\.5-0\.5b-instruct-q4_k_m$/m,
  );
  assert.match(out, /^recommended: qwen2\.5-3b-instruct-q4_k_m \(the largest that fits with room; licence: Qwen Research License\)$/m);
});

test('--ram must be a size and goes with --engine cpu', async () => {
  const env = { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-gguf-cat-')) };
  const bad = await runCli(['models', '--engine', 'cpu', '--ram', 'plenty'], { env });
  assert.equal(bad.exitCode, 2);
  assert.match(String(bad.stderr), /--ram "plenty" is not a memory size/);
  const noEngine = await runCli(['models', '--ram', '4GiB'], { env });
  assert.equal(noEngine.exitCode, 2);
  assert.match(String(noEngine.stderr), /next: Add --engine cpu/);
});

test('a gguf block is checked: a plain file name, owner/name repo, an http(s) URL, a size equal to weightsBytes', () => {
  const base = findModel(catalog, 'qwen2.5-0.5b-instruct-q4_k_m');
  const bad = (gguf: Record<string, unknown>, field: RegExp) =>
    assert.throws(
      () => loadCatalog({ userModels: [{ ...base, id: 'bad-gguf', gguf: { ...base.gguf, ...gguf } }] }),
      (err: unknown) => err instanceof ConfigError && field.test(err.message) && Boolean(err.next),
    );
  bad({ file: '../../etc/passwd.gguf' }, /field "gguf\.file": a file name, without a folder/);
  bad({ file: '.hidden.gguf' }, /field "gguf\.file"/);
  bad({ hfRepo: 'no-owner' }, /field "gguf\.hfRepo": owner\/name/);
  bad({ url: 'ftp://mirror/x.gguf' }, /field "gguf\.url"/);
  bad({ sizeBytes: 1 }, /field "gguf\.sizeBytes": must equal weightsBytes \(397808192\)/);
  bad({ sha256: 'ABC' }, /field "gguf\.sha256"/);
  // The shipped tiny entries (file + sha256 only) still load.
  assert.equal(findModel(catalog, 'tiny-memory').gguf?.file, 'tiny-memory.gguf');
});
