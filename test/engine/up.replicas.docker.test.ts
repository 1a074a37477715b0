/*
 * Placement on a two-GPU box (#18): the recorded two-RTX-3090 nvidia-smi and the stand-in NVIDIA hook on the real
 * dockerd, the simulator image standing in for vLLM's. Asking Docker for GPUs needs the hook, and switching it
 * restarts the shared dockerd: this runs in CI (or with CS_LLM_TEST_RESTART_DOCKER=1) and is skipped elsewhere.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/core/config.js';
import { readDaemonState } from '../../src/daemon/lifecycle.js';
import { listEngineContainers } from '../../src/engine/containers.js';
import { engineDown, engineStatus } from '../../src/engine/manage.js';
import { instanceIdFor, LABEL } from '../../src/engine/spec.js';
import { up } from '../../src/engine/up.js';
import { requireDocker, SIM_IMAGE } from '../helpers/docker.js';
import { freePort } from '../helpers/ports.js';
import { scenarioDir } from '../gpu/fixtures.js';
import { dockerRestartRefusal, setNvidiaHookMode } from '../integration/nvidia-hook-mode.js';

async function successes(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('vllm:request_success_total{'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

test('two GPUs and a model that fits one: an engine per GPU, pinned by DeviceIDs, behind the daemon with sticky sessions; status sees both, down removes both', async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return;
  const refusal = dockerRestartRefusal();
  if (refusal) {
    t.skip(refusal);
    return;
  }
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-replicas-'));
  const env = {
    ...process.env,
    CS_LLM_HOME: home,
    CS_LLM_DAEMON_PORT: String(await freePort()),
    PATH: `${scenarioDir('two-gpus')}:${process.env.PATH}`,
  };
  const paths = loadConfig({ env }).paths;
  t.after(async () => {
    await engineDown({ paths, purge: false, env, docker });
    await setNvidiaHookMode('without');
    rmSync(home, { recursive: true, force: true });
  });
  await setNvidiaHookMode('with');

  const port = await freePort();
  const loaded = loadConfig({ env, flags: { engine: { kind: 'sim', image: SIM_IMAGE, gpus: 'all', model: 'qwen3-8b-awq', port } } });
  const result = await up({
    engine: loaded.config.engine,
    paths,
    env,
    daemon: true,
    daemonListen: { host: loaded.config.daemon.host, port: loaded.config.daemon.port },
  });
  assert.equal(result.placement, 'replicas');
  assert.deepEqual(
    result.engines.map((e) => [e.port, e.gpus]),
    [
      [port, '0'],
      [port + 1, '1'],
    ],
  );

  const ours = (await listEngineContainers(docker, instanceIdFor(home))).sort((a, b) =>
    (a.Labels[LABEL.replica] ?? '').localeCompare(b.Labels[LABEL.replica] ?? ''),
  );
  assert.equal(ours.length, 2);
  const inspected = await Promise.all(ours.map((c) => docker.getContainer(c.Id).inspect()));
  assert.deepEqual(
    inspected.map((i) => i.HostConfig.DeviceRequests?.map((r) => r.DeviceIDs)),
    [[['0']], [['1']]],
  );
  assert.equal(ours[0]!.Labels[LABEL.keyId], ours[1]!.Labels[LABEL.keyId], 'one key for the replicas of one up');
  for (const info of inspected) {
    // Every replica keeps the hardening of a single engine.
    assert.equal(info.HostConfig.IpcMode, 'private');
    assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
    assert.ok(info.Config.Env.some((e) => e === 'SIM_GPU_MEMORY_MIB=24576'));
  }

  // The daemon fronts both, and keeps a session on one of them.
  assert.equal(readDaemonState(paths)?.upstream, `http://127.0.0.1:${port},http://127.0.0.1:${port + 1}`);
  const before = [await successes(port), await successes(port + 1)];
  for (let turn = 0; turn < 4; turn++) {
    const res = await fetch(`${result.daemon!.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-session-id': 'sticky-1' },
      body: JSON.stringify({ model: 'qwen3-8b-awq', messages: [{ role: 'user', content: `turn ${turn}` }] }),
    });
    assert.equal(res.status, 200, await res.text());
  }
  const delta = [(await successes(port)) - before[0]!, (await successes(port + 1)) - before[1]!].sort();
  assert.deepEqual(delta, [0, 4], 'all four turns of the session went to one replica');

  // The daemon reads every engine's /metrics (the dashboard shows one line each).
  const metrics = await (await fetch(`${result.daemon!.url}/metrics`)).text();
  assert.equal(
    metrics.split('\n').filter((l) => /^cs_llm_engine_up\{upstream="http:\/\/127\.0\.0\.1:\d+"\} 1$/.test(l)).length,
    2,
    metrics,
  );

  const status = await engineStatus({ paths, env, docker });
  assert.equal(status.engines.length, 2);

  // The same model split over both GPUs instead: one engine, and the second replica's container goes.
  const split = loadConfig({
    env,
    flags: { engine: { kind: 'sim', image: SIM_IMAGE, gpus: 'all', model: 'qwen3-8b-awq', port, placement: 'tensor-parallel' } },
  });
  const again = await up({ engine: split.config.engine, paths, env, daemon: false });
  assert.equal(again.placement, 'tensor-parallel');
  const left = await listEngineContainers(docker, instanceIdFor(home));
  assert.equal(left.length, 1);
  assert.equal(left[0]!.Labels[LABEL.replica], '0');

  await engineDown({ paths, purge: false, env, docker });
  assert.deepEqual(await listEngineContainers(docker, instanceIdFor(home)), []);
});
