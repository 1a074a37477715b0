/* What bundle create refuses before it touches Docker: these run on any machine. */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runCli } from '../helpers/cli.js';
import { writeFakeHfRepo } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cs-llm-bundle-create-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const env = { CS_LLM_HOME: join(dir, 'home'), CS_LLM_ENGINE_HF_CACHE_DIR: join(dir, 'hf') };

test('weights that are not in the cache are refused with what to run on a connected machine', async () => {
  const result = await runCli(
    ['bundle', 'create', '--model', 'qwen2.5-14b-instruct-awq', '--engine', 'vllm', '--out', join(dir, 'x.tar')],
    { env },
  );
  assert.equal(result.exitCode, 4, String(result.stderr));
  const stderr = String(result.stderr);
  assert.ok(stderr.includes(`error: the weights of Qwen/Qwen2.5-14B-Instruct-AWQ are not (completely) in ${join(dir, 'hf')}`), stderr);
  assert.match(
    stderr,
    /next: On a connected machine run huggingface-cli download Qwen\/Qwen2\.5-14B-Instruct-AWQ \(or cs-llm up --model qwen2\.5-14b-instruct-awq once\)/,
  );
  assert.doesNotMatch(stderr, /\n\s+at /);
});

test('an incomplete download is refused naming the missing shard', async () => {
  const fake = writeFakeHfRepo(join(dir, 'hf'), 'Qwen/Qwen2.5-7B-Instruct-AWQ', 100);
  rmSync(join(fake.repoDir, 'snapshots', fake.revision, 'model-00002-of-00002.safetensors'));
  const result = await runCli(['bundle', 'create', '--model', 'qwen2.5-7b-instruct-awq', '--engine', 'vllm', '--out', join(dir, 'y.tar')], {
    env,
  });
  assert.equal(result.exitCode, 4);
  assert.match(String(result.stderr), /shard model-00002-of-00002\.safetensors .* is missing/);
});

test('an image given by id is refused: a bundle saves images by name so tags survive', async () => {
  const result = await runCli(
    ['bundle', 'create', '--model', 'qwen2.5-7b-instruct-awq', '--engine', 'sim', '--image', 'sha256:' + 'a'.repeat(64)],
    { env },
  );
  assert.equal(result.exitCode, 2);
  assert.match(String(result.stderr), /is an image id or digest; a bundle saves images by name/);
});

test('an unknown engine or model is a clear usage error', async () => {
  const engine = await runCli(['bundle', 'create', '--model', 'qwen2.5-7b-instruct-awq', '--engine', 'llamacpp'], { env });
  assert.equal(engine.exitCode, 2);
  assert.match(String(engine.stderr), /--engine must be vllm, cpu or sim, got "llamacpp"/);
  const model = await runCli(['bundle', 'create', '--model', 'no-such-model', '--engine', 'sim'], { env });
  assert.equal(model.exitCode, 9);
  assert.match(String(model.stderr), /no model "no-such-model" in the catalog/);
});
