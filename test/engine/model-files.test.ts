/* The model files an engine needs, read from a Hugging Face cache laid out like a real download. */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { hfRepoCacheDir, modelStoreFor, readHfSnapshot } from '../../src/engine/model-files.js';
import { checkOfflineReady, missingForOffline } from '../../src/engine/offline.js';
import { EnvironmentError } from '../../src/core/errors.js';
import { writeFakeHfRepo } from '../bundle/fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cs-llm-model-files-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a complete snapshot lists its blobs before the links to them, then refs/main', () => {
  const cache = join(dir, 'complete');
  const fake = writeFakeHfRepo(cache, 'Org/Model', 1000);
  const { snapshot, problems } = readHfSnapshot(cache, 'Org/Model');
  assert.deepEqual(problems, []);
  assert.equal(snapshot!.revision, fake.revision);
  assert.equal(snapshot!.repoDir, hfRepoCacheDir(cache, 'Org/Model'));
  const kinds = snapshot!.files.map((f) => (f.rel.includes('/blobs/') ? 'blob' : f.rel.endsWith('refs/main') ? 'ref' : 'link'));
  assert.deepEqual(kinds, ['blob', 'blob', 'blob', 'blob', 'link', 'link', 'link', 'link', 'ref']);
  for (const link of snapshot!.files.filter((f) => f.type === 'symlink')) assert.match(link.target!, /^\.\.\/\.\.\/blobs\/[0-9a-f]{64}$/);
  assert.equal(
    snapshot!.totalBytes,
    snapshot!.files.reduce((s, f) => s + f.size, 0),
  );
});

test('a missing repository, a missing shard and a dangling link are each reported', () => {
  const cache = join(dir, 'partial');
  assert.match(readHfSnapshot(cache, 'Org/Model').problems[0]!, /no hub\/models--Org--Model/);
  const fake = writeFakeHfRepo(cache, 'Org/Model', 1000);
  const snapshotDir = join(fake.repoDir, 'snapshots', fake.revision);
  unlinkSync(join(snapshotDir, 'model-00002-of-00002.safetensors'));
  const blobs = readdirSync(join(fake.repoDir, 'blobs'));
  const { problems } = readHfSnapshot(cache, 'Org/Model');
  assert.deepEqual(problems, [
    'Org/Model: shard model-00002-of-00002.safetensors (named in model.safetensors.index.json) is missing: the download is incomplete',
  ]);
  // A link into a blob that is not there (an interrupted download leaves *.incomplete instead).
  for (const blob of blobs) unlinkSync(join(fake.repoDir, 'blobs', blob));
  writeFileSync(join(fake.repoDir, 'blobs', 'x.incomplete'), '');
  const dangling = readHfSnapshot(cache, 'Org/Model').problems;
  assert.ok(
    dangling.some((p) => /config\.json points to a missing file/.test(p)),
    dangling.join('\n'),
  );
});

test('engines as data: vllm reads the Hugging Face cache, cpu one GGUF file, the simulator needs no files', () => {
  assert.deepEqual(modelStoreFor('vllm', { id: 'x', hfRepo: 'Org/X' }), { store: 'hf-cache', repo: 'Org/X' });
  assert.deepEqual(modelStoreFor('sim', { id: 'x', hfRepo: 'Org/X' }), { store: 'none' });
  assert.deepEqual(modelStoreFor('cpu', { id: 'x', gguf: { file: 'x.gguf' } }), { store: 'gguf', file: 'x.gguf' });
});

test('the offline check lists every missing piece at once and says how to bring them', async () => {
  const cache = join(dir, 'offline');
  const needs = { kind: 'vllm' as const, image: 'vllm/vllm-openai:v0', model: { id: 'qwen', hfRepo: 'Org/Qwen' }, hfCacheDir: cache };
  // Without Docker at hand (null) only the files are checked.
  assert.deepEqual(await missingForOffline(null, needs), ['weights: Org/Qwen: no hub/models--Org--Qwen in ' + cache]);
  await assert.rejects(checkOfflineReady(null, needs), (err: Error) => {
    assert.ok(err instanceof EnvironmentError);
    assert.match(err.next ?? '', /cs-llm bundle create --model qwen --engine vllm .*bundle load/);
    return true;
  });
  const fake = writeFakeHfRepo(cache, 'Org/Qwen', 100);
  await checkOfflineReady(null, needs);
  // The engine asks for "main": a snapshot that refs/main does not name cannot be found offline.
  unlinkSync(join(fake.repoDir, 'refs', 'main'));
  assert.deepEqual(await missingForOffline(null, needs), [
    `weights: Org/Qwen: no refs/main naming snapshot ${fake.revision}, so the engine cannot find it offline`,
  ]);
  assert.deepEqual(await missingForOffline(null, { ...needs, kind: 'sim' }), []);
});
