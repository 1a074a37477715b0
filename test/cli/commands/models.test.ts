import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { entryArgs, runCli } from '../../helpers/cli.js';
import { scenarioDir } from '../../gpu/fixtures.js';

const home = () => mkdtempSync(join(tmpdir(), 'cs-llm-models-cli-'));
const NO_GPU_ENV = () => ({ CS_LLM_HOME: home(), PATH: '/nonexistent-cs-llm-bin' });

interface ModelsJson {
  models: Array<{
    id: string;
    verdict: string;
    maxModelLen: number | null;
    maxNumSeqs: number | null;
    requiredBytes: number;
    usableBytes: number;
    kvCacheTokens: number;
    fitSource: 'estimated' | 'measured';
    estimatedKvCacheTokens: number;
    measuredKvCacheTokens: number | null;
    estimateError: number | null;
    reason: string;
  }>;
  recommended: string | null;
}

async function modelsJson(args: string[], env: Record<string, string>): Promise<ModelsJson> {
  const result = await runCli(['models', '--json', ...args], { env });
  assert.equal(result.exitCode, 0, String(result.stderr));
  return JSON.parse(String(result.stdout)) as ModelsJson;
}

test('models --json --vram 24GiB plans for a 24 GiB card: 32B tight, Qwen3 14B recommended, exact fields', async () => {
  const out = await modelsJson(['--vram', '24GiB'], NO_GPU_ENV());
  assert.deepEqual(Object.keys(out), ['models', 'recommended']);
  for (const m of out.models)
    assert.deepEqual(Object.keys(m), [
      'id',
      'verdict',
      'maxModelLen',
      'maxNumSeqs',
      'requiredBytes',
      'usableBytes',
      'kvCacheTokens',
      'fitSource',
      'estimatedKvCacheTokens',
      'measuredKvCacheTokens',
      'estimateError',
      'reason',
    ]);
  const byId = new Map(out.models.map((m) => [m.id, m]));
  assert.equal(byId.get('qwen2.5-32b-instruct-awq')!.verdict, 'tight');
  assert.equal(byId.get('qwen2.5-32b-instruct-awq')!.maxModelLen, 8192);
  assert.equal(byId.get('qwen2.5-14b-instruct-awq')!.verdict, 'fits');
  assert.equal(byId.get('qwen2.5-7b-instruct-awq')!.verdict, 'fits');
  assert.equal(byId.get('llama-3.1-8b-instruct-awq-int4')!.verdict, 'fits');
  assert.equal(byId.get('qwen3-32b-awq')!.verdict, 'tight');
  assert.equal(byId.get('llama-3.1-70b-instruct-awq-int4')!.verdict, 'no');
  assert.equal(out.recommended, 'qwen3-14b-awq');
  assert.equal(byId.get('qwen2.5-14b-instruct-awq')!.usableBytes, Math.floor(24 * 1024 ** 3 * 0.9));
});

test('models --json on the recorded RTX 4090 uses the detected card', async () => {
  const out = await modelsJson([], { CS_LLM_HOME: home(), PATH: `${scenarioDir('rtx4090-display')}:${process.env.PATH}` });
  assert.equal(out.recommended, 'qwen3-14b-awq');
  assert.match(out.models.find((m) => m.id === 'qwen2.5-32b-instruct-awq')!.reason, /usable on GPU 0 \(NVIDIA GeForce RTX 4090\)/);
});

test('a KV cache vLLM measured on this GPU replaces the estimate: --json carries both and the error, the table shows them side by side', async () => {
  const dir = home();
  mkdirSync(join(dir, 'state'), { recursive: true });
  const measured = {
    gpuName: 'NVIDIA GeForce RTX 4090',
    gpuMemoryMiB: 24564,
    model: 'qwen3-14b-awq',
    revision: '31c69efc29464b6bb0aee1398b5a7b50a99340c3',
    image: 'vllm/vllm-openai:v0.10.1.1',
    imageDigest: 'sha256:' + 'a'.repeat(64),
    flags: { gpuMemoryUtilization: 0.9, tensorParallel: 1, maxModelLen: 32768, maxNumSeqs: 8, extra: [] },
    kvCacheTokens: 75680,
    maxConcurrency: 2.31,
    weightsGiB: 9.2915,
    availableKvGiB: 11.55,
    estimatedKvCacheTokens: 70765,
    measuredAt: '2026-11-29T05:20:09.000Z',
  };
  writeFileSync(join(dir, 'state', 'measurements.json'), JSON.stringify({ version: 1, measurements: [measured] }));
  const env = { CS_LLM_HOME: dir, PATH: `${scenarioDir('rtx4090-display')}:${process.env.PATH}` };
  const out = await modelsJson([], env);
  const qwen = out.models.find((m) => m.id === 'qwen3-14b-awq')!;
  assert.equal(qwen.fitSource, 'measured');
  assert.equal(qwen.measuredKvCacheTokens, 75680);
  assert.equal(qwen.kvCacheTokens, 75680);
  assert.ok(qwen.estimatedKvCacheTokens > 0 && qwen.estimatedKvCacheTokens !== 75680);
  assert.equal(qwen.estimateError, Math.round(((qwen.estimatedKvCacheTokens - 75680) / 75680) * 1000) / 1000);
  assert.match(qwen.reason, /KV cache of 74k tokens \(measured by vLLM\)/);
  const other = out.models.find((m) => m.id === 'qwen3-8b-awq')!;
  assert.equal(other.fitSource, 'estimated');
  assert.equal(other.measuredKvCacheTokens, null);
  assert.equal(other.estimateError, null);

  const plain = await runCli(['models'], { env });
  const line = String(plain.stdout)
    .split('\n')
    .find((l) => l.startsWith('qwen3-14b-awq '))!;
  assert.match(line, /\s75\.7k measured \(est\. \d+\.\dk, [+-]\d+\.\d%\)\s/);
  assert.match(
    String(plain.stdout)
      .split('\n')
      .find((l) => l.startsWith('qwen3-8b-awq '))!,
    /\s\d+\.\dk est\.\s/,
  );
});

test('models --json with --context too large for a model gives "no" with what would fit', async () => {
  const out = await modelsJson(['--vram', '24GB', '--context', '32768'], NO_GPU_ENV());
  const big = out.models.find((m) => m.id === 'qwen2.5-32b-instruct-awq')!;
  assert.equal(big.verdict, 'no');
  assert.equal(big.maxModelLen, null);
  assert.match(big.reason, /needs .* GiB at 32k context; .* GiB usable .*Fits at 8k/);
});

test('models with two planned cards splits the 32B model across them', async () => {
  const out = await modelsJson(['--vram', '24GiB', '--gpus', '0,1'], NO_GPU_ENV());
  const big = out.models.find((m) => m.id === 'qwen2.5-32b-instruct-awq')!;
  assert.equal(big.verdict, 'fits');
  assert.match(big.reason, /tensor parallel 2/);
  assert.equal(out.recommended, 'qwen3-32b-awq');
});

test('models --json with no GPU and no --vram says nothing fits and why', async () => {
  const out = await modelsJson([], NO_GPU_ENV());
  assert.equal(out.recommended, null);
  for (const m of out.models) {
    assert.equal(m.verdict, 'no');
    assert.match(m.reason, /--vram/);
  }
});

test('a user model in the config is estimated too; a bad one is a config error', async () => {
  const dir = home();
  const entry = {
    id: 'my-qwen-7b',
    hfRepo: 'me/qwen-7b-awq',
    servedName: 'mine',
    family: 'qwen2.5',
    parameters: 7.6e9,
    quantization: 'awq',
    weightsBytes: 5_600_000_000,
    layers: 28,
    attentionHeads: 28,
    kvHeads: 4,
    headDim: 128,
    maxContext: 32768,
    toolCallParser: 'hermes',
    chatTemplate: null,
    engineArgs: [],
    minComputeCapability: 7.5,
    license: 'Apache-2.0',
    engines: ['vllm'],
  };
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ models: [entry] }));
  const out = await modelsJson(['--vram', '24GiB'], { CS_LLM_HOME: dir, PATH: '/nonexistent-cs-llm-bin' });
  assert.equal(out.models.find((m) => m.id === 'my-qwen-7b')?.verdict, 'fits');

  writeFileSync(join(dir, 'config.json'), JSON.stringify({ models: [{ ...entry, headDim: -1 }] }));
  const bad = await runCli(['models', '--json', '--vram', '24GiB'], { env: { CS_LLM_HOME: dir, PATH: '/nonexistent-cs-llm-bin' } });
  assert.equal(bad.exitCode, 3);
  assert.match(String(bad.stderr), /models\[0\] \("my-qwen-7b"\): field "headDim"/);
  assert.match(String(bad.stderr), /^next: /m);
});

test('a --vram that is not a size, or a GPU that is not there, is a usage error with the next step', async () => {
  const vram = await runCli(['models', '--vram', 'lots'], { env: NO_GPU_ENV() });
  assert.equal(vram.exitCode, 2);
  assert.match(String(vram.stderr), /--vram "lots" is not a memory size/);
  assert.match(String(vram.stderr), /next: Write it like 24GiB/);
  const gpus = await runCli(['models', '--gpus', '3'], {
    env: { CS_LLM_HOME: home(), PATH: `${scenarioDir('two-gpus')}:${process.env.PATH}` },
  });
  assert.equal(gpus.exitCode, 2);
  assert.match(String(gpus.stderr), /there is no GPU "3"/);
  assert.ok(!String(gpus.stderr).includes('    at '), 'no stack trace');
});

test('models without a terminal prints one plain line per model and the recommendation', async () => {
  const result = await runCli(['models', '--vram', '80GiB'], { env: NO_GPU_ENV() });
  assert.equal(result.exitCode, 0);
  const lines = String(result.stdout).trim().split('\n');
  assert.match(lines[0]!, /^planning for: 1 x 80\.0 GiB card/);
  assert.ok(lines.some((l) => /^qwen2\.5-32b-instruct-awq\s+18\.0 GiB\s+fits\s+32k\s+\d+\s+1\s+/.test(l)));
  assert.ok(lines.some((l) => /^llama-3\.1-70b-instruct-awq-int4\s+37\.0 GiB\s+fits\s+64k\s+\d+\s+1\s+/.test(l)));
  assert.equal(lines.at(-1), 'recommended: llama-3.1-70b-instruct-awq-int4 (the largest model that fits with room)');
});

test('--vram sizes read GB as the GiB printed on cards, and MiB and TiB as written', async () => {
  const { parseVramMiB } = await import('../../../src/cli/commands/models.js');
  assert.equal(parseVramMiB('24GiB'), 24576);
  assert.equal(parseVramMiB('24GB'), 24576);
  assert.equal(parseVramMiB('24 g'), 24576);
  assert.equal(parseVramMiB('24576MiB'), 24576);
  assert.equal(parseVramMiB('80'), 81920);
  assert.equal(parseVramMiB('1TiB'), 1024 * 1024);
  assert.equal(parseVramMiB('7.5GiB'), 7680);
  assert.throws(() => parseVramMiB('100MiB'), /too small/);
  assert.throws(() => parseVramMiB('24 gigs'), /not a memory size/);
});

test('models in a narrow terminal keeps model ids whole, drops minor columns and colors verdicts', async (t) => {
  const { execa } = await import('execa');
  const { ROOT } = await import('../../helpers/cli.js');
  const script = await execa('sh', ['-c', 'command -v script'], { reject: false });
  if (script.exitCode !== 0) {
    t.skip('util-linux script(1) is not installed, so there is no pseudo-terminal to run in');
    return;
  }
  const cli = [process.execPath, ...entryArgs('cli/main'), 'models', '--vram', '24GiB'].join(' ');
  // script(1) gives the CLI a real pseudo-terminal of 60 columns.
  const result = await execa('script', ['-qec', `stty cols 60; ${cli}`, '/dev/null'], {
    cwd: ROOT,
    env: { CS_LLM_HOME: home(), PATH: `/nonexistent-cs-llm-bin:${process.env.PATH}`, TERM: 'xterm', NO_COLOR: undefined },
    reject: false,
    timeout: 60_000,
  });
  assert.equal(result.exitCode, 0, String(result.stdout));
  const lines = String(result.stdout).split(/\r?\n/);
  const header = lines.find((l) => l.startsWith('MODEL'));
  assert.ok(header, String(result.stdout));
  assert.match(header, /^MODEL\s+VERDICT\s+CONTEXT\s+SEQS$/);
  assert.ok(
    lines.some((l) => l.startsWith('llama-3.1-8b-instruct-awq-int4 ')),
    'the longest id is not cut',
  );
  assert.ok(
    lines.some((l) => l.includes('\u001b[33mtight\u001b[0m')),
    'tight is painted yellow',
  );
});
