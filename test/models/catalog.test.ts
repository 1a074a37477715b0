import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findModel, loadCatalog } from '../../src/models/catalog.js';
import { kvBytesPerToken } from '../../src/models/fit.js';
import { ConfigError, NotFoundError } from '../../src/core/errors.js';

const KiB = 1024;

test('the shipped catalog holds the four 4-bit instruct models with the figures of FACTS.md section 3', () => {
  const catalog = loadCatalog();
  const byId = new Map(catalog.models.map((m) => [m.id, m]));
  const expect = [
    ['qwen2.5-7b-instruct-awq', 'Qwen/Qwen2.5-7B-Instruct-AWQ', 5.6e9, 56 * KiB, 'hermes'],
    ['qwen2.5-14b-instruct-awq', 'Qwen/Qwen2.5-14B-Instruct-AWQ', 9.98e9, 192 * KiB, 'hermes'],
    ['qwen2.5-32b-instruct-awq', 'Qwen/Qwen2.5-32B-Instruct-AWQ', 19.33e9, 256 * KiB, 'hermes'],
    ['llama-3.1-8b-instruct-awq-int4', 'hugging-quants/Meta-Llama-3.1-8B-Instruct-AWQ-INT4', 5.73e9, 128 * KiB, 'llama3_json'],
  ] as const;
  for (const [id, repo, weights, kvPerToken, parser] of expect) {
    const model = byId.get(id);
    assert.ok(model, `${id} is in the catalog`);
    assert.equal(model.hfRepo, repo);
    assert.equal(model.weightsBytes, weights);
    assert.equal(kvBytesPerToken(model), kvPerToken, `${id} KV bytes per token`);
    assert.equal(model.toolCallParser, parser);
    assert.deepEqual(model.engines, ['vllm']);
    assert.equal(model.quantization, 'awq');
    assert.ok(model.source, `${id} says where its figures come from`);
  }
  assert.equal(byId.get('llama-3.1-8b-instruct-awq-int4')!.chatTemplate, 'tool_chat_template_llama3.1_json.jinja');
});

test('the current AWQ releases for 24-80 GB cards carry their pinned revision, sourced sizes and licence', () => {
  const catalog = loadCatalog();
  const byId = new Map(catalog.models.map((m) => [m.id, m]));
  const expect = [
    ['qwen3-8b-awq', 'Qwen/Qwen3-8B-AWQ', 6_098_581_864, 144 * KiB, 'Apache-2.0'],
    ['qwen3-14b-awq', 'Qwen/Qwen3-14B-AWQ', 9_976_690_240, 160 * KiB, 'Apache-2.0'],
    ['qwen3-32b-awq', 'Qwen/Qwen3-32B-AWQ', 19_325_481_744, 256 * KiB, 'Apache-2.0'],
    [
      'llama-3.1-70b-instruct-awq-int4',
      'hugging-quants/Meta-Llama-3.1-70B-Instruct-AWQ-INT4',
      39_770_000_000,
      320 * KiB,
      'Llama 3.1 Community License',
    ],
  ] as const;
  for (const [id, repo, weights, kvPerToken, license] of expect) {
    const model = byId.get(id);
    assert.ok(model, `${id} is in the catalog`);
    assert.equal(model.hfRepo, repo);
    assert.match(model.revision ?? '', /^[0-9a-f]{40}$/, `${id} names the commit its figures come from`);
    assert.ok(model.source?.includes(model.revision!), `${id}: the source names that revision`);
    assert.equal(model.weightsBytes, weights);
    assert.equal(kvBytesPerToken(model), kvPerToken, `${id} KV bytes per token`);
    assert.equal(model.license, license);
    assert.equal(model.quantization, 'awq');
  }
  assert.deepEqual(byId.get('qwen3-14b-awq')!.engineArgs, ['--reasoning-parser', 'qwen3']);
  assert.equal(byId.get('llama-3.1-70b-instruct-awq-int4')!.toolCallParser, 'llama3_json');
});

test('a revision that is not a full commit id is refused with the field named', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-cat-'));
  const file = join(dir, 'models.json');
  const entry = { ...findModel(loadCatalog(), 'qwen3-8b-awq'), revision: 'main' };
  writeFileSync(file, JSON.stringify({ version: 1, models: [entry] }));
  assert.throws(
    () => loadCatalog({ file }),
    (err: Error) => err instanceof ConfigError && /revision/.test(err.message),
  );
});

test('a user model from the config is added to the catalog', () => {
  const catalog = loadCatalog({
    userModels: [
      {
        id: 'my-qwen-gguf',
        servedName: 'my-qwen',
        family: 'qwen2.5',
        parameters: 1.5e9,
        quantization: 'gguf',
        weightsBytes: 1_100_000_000,
        layers: 28,
        attentionHeads: 12,
        kvHeads: 2,
        headDim: 128,
        maxContext: 32768,
        toolCallParser: null,
        chatTemplate: null,
        engineArgs: [],
        minComputeCapability: 7.0,
        license: 'Apache-2.0',
        engines: ['cpu'],
        gguf: { file: 'qwen2.5-1.5b-instruct-q4_k_m.gguf' },
      },
    ],
  });
  assert.equal(findModel(catalog, 'my-qwen-gguf').gguf?.file, 'qwen2.5-1.5b-instruct-q4_k_m.gguf');
  assert.ok(catalog.models.length >= 5);
});

test('a user entry with a shipped id replaces the shipped one', () => {
  const shipped = findModel(loadCatalog(), 'qwen2.5-14b-instruct-awq');
  const catalog = loadCatalog({ userModels: [{ ...shipped, engineArgs: ['--enforce-eager'] }] });
  assert.deepEqual(findModel(catalog, 'qwen2.5-14b-instruct-awq').engineArgs, ['--enforce-eager']);
  assert.equal(catalog.models.filter((m) => m.id === shipped.id).length, 1);
});

test('a bad user addition is a config error naming the entry and the field', () => {
  const shipped = findModel(loadCatalog(), 'qwen2.5-7b-instruct-awq');
  assert.throws(
    () => loadCatalog({ userModels: [{ ...shipped, id: 'broken-model', kvHeads: 'eight' }] }),
    (err: unknown) =>
      err instanceof ConfigError &&
      err.message.includes('models[0] ("broken-model")') &&
      err.message.includes('"kvHeads"') &&
      Boolean(err.next),
  );
  assert.throws(
    () => loadCatalog({ userModels: [{ ...shipped, id: 'no-repo', hfRepo: undefined }] }),
    (err: unknown) => err instanceof ConfigError && err.message.includes('"hfRepo"') && /Hugging Face repo/.test(err.message),
  );
  assert.throws(
    () => loadCatalog({ userModels: [{ ...shipped, id: 'cpu-without-file', engines: ['cpu'] }] }),
    (err: unknown) => err instanceof ConfigError && err.message.includes('"gguf"'),
  );
});

test('an unreadable or invalid catalog file is a config error naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-catalog-'));
  const file = join(dir, 'models.json');
  writeFileSync(file, JSON.stringify({ version: 1, models: [{ id: 'Bad Id' }] }));
  assert.throws(
    () => loadCatalog({ file }),
    (err: unknown) => err instanceof ConfigError && err.message.includes(file) && err.message.includes('models.0.id'),
  );
  writeFileSync(file, '{ not json');
  assert.throws(
    () => loadCatalog({ file }),
    (err: unknown) => err instanceof ConfigError && err.message.includes(file),
  );
});

test('a model is found by id, served name or repo; an unknown one lists the ids', () => {
  const catalog = loadCatalog();
  assert.equal(findModel(catalog, 'Qwen/Qwen2.5-32B-Instruct-AWQ').id, 'qwen2.5-32b-instruct-awq');
  assert.equal(findModel(catalog, 'QWEN2.5-7B-INSTRUCT-AWQ').id, 'qwen2.5-7b-instruct-awq');
  assert.throws(
    () => findModel(catalog, 'gpt-5'),
    (err: unknown) =>
      err instanceof NotFoundError &&
      err.message.includes('"gpt-5"') &&
      err.details.join(' ').includes('qwen2.5-14b-instruct-awq') &&
      Boolean(err.next),
  );
});
