import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type Docker from 'dockerode';
import { loadConfig } from '../../src/core/config.js';
import { EnvironmentError, UsageError } from '../../src/core/errors.js';
import { modelCacheDir } from '../../src/doctor/checks.js';
import { checkDiskForWeights, engineModelOf, hfRepoCacheDir, resolveKind, up } from '../../src/engine/up.js';
import { detectGpus } from '../../src/gpu/detect.js';
import { envWithScenario } from '../gpu/fixtures.js';
import { loadCatalog, findModel } from '../../src/models/catalog.js';

test('weights that cannot fit on the cache disk are refused before the engine starts, unless already cached', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-hf-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const huge = { id: 'huge', hfRepo: 'org/huge', weightsBytes: 2 ** 60 };
  await assert.rejects(checkDiskForWeights(join(dir, 'not-yet-created'), huge), (err: unknown) => {
    assert.ok(err instanceof EnvironmentError);
    assert.match(err.message, /not enough disk for the weights of huge: they need about .* GiB, .* GiB are free at /);
    assert.match(err.next!, /CS_LLM_ENGINE_HF_CACHE_DIR/);
    return true;
  });
  mkdirSync(hfRepoCacheDir(dir, 'org/huge'), { recursive: true });
  await checkDiskForWeights(dir, huge);
  await checkDiskForWeights(dir, { id: 'small', hfRepo: 'org/small', weightsBytes: 1024 });
});

test('the catalog entry becomes the engine model; vLLM finds bare chat template names in its examples folder', () => {
  const llama = findModel(loadCatalog(), 'llama-3.1-8b-instruct-awq-int4');
  assert.deepEqual(engineModelOf(llama, 'vllm'), {
    id: 'llama-3.1-8b-instruct-awq-int4',
    hfRepo: 'hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4',
    servedName: 'llama-3.1-8b-instruct-awq-int4',
    toolCallParser: 'llama3_json',
    chatTemplate: '/vllm-workspace/examples/tool_chat_template_llama3.1_json.jinja',
    engineArgs: [],
  });
  assert.equal(engineModelOf(llama, 'sim').chatTemplate, 'tool_chat_template_llama3.1_json.jinja');
});

test('engine kinds: auto means vllm before the host is probed; sim and cpu are themselves', () => {
  assert.equal(resolveKind('auto'), 'vllm');
  assert.equal(resolveKind('sim'), 'sim');
  assert.equal(resolveKind('cpu'), 'cpu');
});

test('up looks for the model cache where the doctor measures it: $HOME of the environment it is given', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-home-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const env = { HOME: home, CS_LLM_HOME: join(home, 'cs-llm') };
  const loaded = loadConfig({ env, flags: { engine: { kind: 'vllm', gpus: 'all', model: 'qwen2.5-7b-instruct-awq', offline: true } } });
  // A Docker engine that answers and has no images: the offline check then lists what is missing, paths included.
  const docker = {
    ping: async () => 'OK',
    version: async () => ({ Version: '20.10.24', ApiVersion: '1.41' }),
    info: async () => ({ Runtimes: { runc: {} } }),
    getImage: () => ({
      inspect: async () => {
        throw Object.assign(new Error('No such image'), { statusCode: 404 });
      },
    }),
  } as unknown as Docker;
  const detect = async () => detectGpus({ env: envWithScenario('a100-80gb') });
  const expected = modelCacheDir(loaded.config, env);
  assert.equal(expected, join(home, '.cache', 'huggingface'));
  await assert.rejects(up({ engine: loaded.config.engine, paths: loaded.paths, env }, { docker, detectGpus: detect }), (err: unknown) => {
    assert.ok(err instanceof EnvironmentError, String(err));
    assert.ok(
      err.details.some((d) => d.includes(`in ${expected}`)),
      err.details.join('\n'),
    );
    return true;
  });
});
