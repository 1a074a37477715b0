import assert from 'node:assert/strict';
import { chownSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { engineKeyId, newEngineKey } from '../../src/engine/engine-key.js';
import { ensureEngineNetwork } from '../../src/engine/network.js';
import { engineModelOf } from '../../src/engine/plan.js';
import { probeHealth } from '../../src/engine/probes.js';
import { buildEngineSpec } from '../../src/engine/spec.js';
import { findModel, loadCatalog } from '../../src/models/catalog.js';
import { requireDocker, SIM_IMAGE } from '../helpers/docker.js';
import { freePort } from '../helpers/ports.js';

/**
 * The vLLM container as the spec builds it, on the real dockerd, with the simulator standing in for vLLM's
 * image and no GPU request (this machine has no NVIDIA runtime; the GPU path runs in CI): it runs as the
 * operator, so what it writes into the bind-mounted Hugging Face cache is theirs, not root's; it has the
 * shared memory vLLM's docs ask for; its /v1 wants the key.
 */
test('the vllm container runs as the operator: files it writes in the model cache are theirs; /dev/shm is 10.24 GiB', async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return;
  const work = mkdtempSync(join(tmpdir(), 'cs-llm-vllm-spec-'));
  const hfCacheDir = join(work, 'huggingface');
  mkdirSync(hfCacheDir);
  // The operator (uid 4321 here) owns the cache, as ~/.cache/huggingface is the user's.
  chownSync(hfCacheDir, 4321, 4321);
  const port = await freePort();
  const key = newEngineKey();
  const spec = buildEngineSpec({
    kind: 'vllm',
    image: SIM_IMAGE,
    model: engineModelOf(findModel(loadCatalog(), 'qwen2.5-7b-instruct-awq'), 'vllm'),
    maxModelLen: 8192,
    maxNumSeqs: 4,
    gpuMemoryUtilization: 0.9,
    gpus: { mode: 'none' },
    port,
    hfCacheDir,
    offline: false,
    hfToken: 'hf_test-not-a-real-token',
    instance: `spec-test-${process.pid}`,
    apiKey: key,
    runAs: '4321:4321',
    network: await ensureEngineNetwork(docker),
  });
  const container = await docker.createContainer(spec.options);
  t.after(async () => {
    await container.remove({ force: true }).catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });
  await container.start();
  // probeHealth keeps a timer of its own: right after a start, Docker's port proxy can hold a connection silently.
  let health = 'down';
  for (let i = 0; i < 80 && health !== 'ok'; i++) {
    health = await probeHealth(`http://127.0.0.1:${port}`);
    if (health !== 'ok') await new Promise((r) => setTimeout(r, 250));
  }
  assert.equal(health, 'ok', 'the engine started as uid 4321 with HOME=/tmp');

  const inside = async (script: string) => (await execa('docker', ['exec', container.id, '/usr/local/bin/node', '-e', script])).stdout;
  await inside(
    'const fs = require("fs"); fs.mkdirSync("/cache/huggingface/hub/models--x", { recursive: true }); fs.writeFileSync("/cache/huggingface/hub/models--x/blob", "w"); fs.mkdirSync(process.env.HOME + "/.cache/vllm", { recursive: true })',
  );
  for (const path of ['hub', 'hub/models--x', 'hub/models--x/blob']) {
    const stats = statSync(join(hfCacheDir, path));
    assert.deepEqual([stats.uid, stats.gid], [4321, 4321], path);
  }
  const env = JSON.parse(await inside('process.stdout.write(JSON.stringify(process.env))')) as Record<string, string>;
  assert.equal(env.HF_HOME, '/cache/huggingface');
  assert.equal(env.HF_TOKEN, 'hf_test-not-a-real-token');
  const shm = JSON.parse(
    await inside('const s = require("fs").statfsSync("/dev/shm"); process.stdout.write(String(s.bsize * s.blocks))'),
  ) as number;
  assert.ok(Math.abs(shm - 10.24 * 1024 ** 3) < 1024 ** 2, `/dev/shm is ${shm} bytes`);
  const info = await container.inspect();
  assert.equal(info.Config.User, '4321:4321');
  assert.equal(info.HostConfig.PidsLimit, 8192);
  assert.equal(info.Config.Labels['cs-llm.key-id'], engineKeyId(key));

  assert.equal((await fetch(`http://127.0.0.1:${port}/v1/models`)).status, 401);
  assert.equal((await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
  // vLLM's /metrics is not behind its key; the daemon relays it, so the engine must keep it open.
  assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 200);
});
