/*
 * `up` against the real dockerd, the loopback registry and the simulator image. Each test has its own
 * CS_LLM_HOME, so its containers carry their own instance label, and removes them in t.after.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { PassThrough } from 'node:stream';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { execa } from 'execa';
import type Docker from 'dockerode';
import { loadConfig } from '../../src/core/config.js';
import { ConflictError, EngineError, EnvironmentError, FitError } from '../../src/core/errors.js';
import { listEngineContainers } from '../../src/engine/containers.js';
import { engineKeyFile, engineKeyId, readEngineKey } from '../../src/engine/engine-key.js';
import { probeGpuRuntime } from '../../src/engine/gpu-preflight.js';
import { engineDown, engineLogs, engineStatus } from '../../src/engine/manage.js';
import { instanceIdFor, LABEL } from '../../src/engine/spec.js';
import { up, type UpProgress, type UpRequest } from '../../src/engine/up.js';
import { runCli, ROOT } from '../helpers/cli.js';
import { requireDocker, SIM_IMAGE } from '../helpers/docker.js';
import { dockerRestartRefusal, setNvidiaHookMode } from '../integration/nvidia-hook-mode.js';
import { freePort } from '../helpers/ports.js';

interface Setup {
  docker: Docker;
  home: string;
  request(flags: Record<string, unknown>, extra?: Partial<UpRequest>): UpRequest & { events: UpProgress[] };
  ours(): Promise<Docker.ContainerInfo[]>;
}

async function setup(t: TestContext): Promise<Setup | null> {
  const docker = await requireDocker(t);
  if (!docker) return null;
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-up-'));
  const env = { ...process.env, CS_LLM_HOME: home };
  t.after(async () => {
    await engineDown({ paths: loadConfig({ env }).paths, purge: false, env, docker });
    rmSync(home, { recursive: true, force: true });
  });
  return {
    docker,
    home,
    request(flags, extra = {}) {
      const loaded = loadConfig({ env, flags: { engine: { kind: 'sim', image: SIM_IMAGE, ...flags } } });
      const events: UpProgress[] = [];
      return { engine: loaded.config.engine, paths: loaded.paths, env, events, onProgress: (e) => events.push(e), ...extra };
    },
    ours: () => listEngineContainers(docker, instanceIdFor(home)),
  };
}

/**
 * Removes the image under every tag it has (the :test and :<version> tags of the simulator share one id, and
 * removing one tag only untags). True when its layers are really gone, so the next pull downloads them.
 */
async function removeImageEverywhere(docker: Docker, ref: string): Promise<boolean> {
  const id = await docker
    .getImage(ref)
    .inspect()
    .then(
      (info) => info.Id,
      (err: { statusCode?: number }) => {
        if (err.statusCode === 404) return null;
        throw err;
      },
    );
  if (id === null) return true;
  await docker
    .getImage(id)
    .remove({ force: true })
    .catch(() => undefined);
  return docker
    .getImage(id)
    .inspect()
    .then(
      () => false,
      (err: { statusCode?: number }) => err.statusCode === 404,
    );
}

function readinessStates(events: UpProgress[]): string[] {
  const states: string[] = [];
  for (const e of events) if (e.stage === 'readiness' && states.at(-1) !== e.state) states.push(e.state);
  return states;
}

test('up --engine sim goes from nothing (image not on the host) to serving, and down leaves nothing behind', async (t) => {
  const s = await setup(t);
  if (!s) return;
  // Make the pull real: the image must come from the registry. Where another suite's container still
  // uses the image (never in CI, which runs one file at a time), pull it again with the policy "always".
  const removed = await removeImageEverywhere(s.docker, SIM_IMAGE);
  const port = await freePort();
  const request = s.request({ port, pullPolicy: removed ? 'if-missing' : 'always' });
  const result = await up(request);

  assert.equal(result.mode, 'container');
  assert.equal(result.pulled, true);
  assert.equal(result.baseUrl, `http://127.0.0.1:${port}/v1`);
  const pulls = request.events.flatMap((e) => (e.stage === 'pulling' ? [e.pull] : []));
  const last = pulls.at(-1)!;
  if (removed) {
    assert.ok(last.totalBytes > 0 && last.downloadedBytes === last.totalBytes, JSON.stringify(last));
    assert.equal(last.layersDone, last.layers);
  } else {
    t.diagnostic('the simulator image is in use elsewhere; pulled again with --pull-policy always');
  }
  assert.deepEqual(readinessStates(request.events).at(-1), 'serving');

  // It really serves the OpenAI API on loopback, under the served name, to whoever has its key.
  const res = await fetch(`${result.baseUrl}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${readFileSync(result.apiKeyFile, 'utf8').trim()}` },
    body: JSON.stringify({ model: result.servedName, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 5 }),
  });
  assert.equal(res.status, 200);
  const [container] = await s.ours();
  assert.ok(container);
  assert.equal(container.Labels[LABEL.managed], 'true');
  assert.deepEqual(
    container.Ports.map((p) => [p.IP, p.PublicPort]),
    [['127.0.0.1', port]],
  );

  const status = await engineStatus({ paths: request.paths, env: request.env, docker: s.docker });
  assert.equal(status.engines.length, 1);
  assert.deepEqual(
    (({ state, health, restartCount, crashLoop, port: p }) => ({ state, health, restartCount, crashLoop, port: p }))(
      status.engines[0] as never,
    ),
    { state: 'running', health: 'ok', restartCount: 0, crashLoop: false, port },
  );

  // logs -f follows the engine's output until cancelled.
  const seen = new PassThrough();
  let text = '';
  const stop = new AbortController();
  seen.on('data', (chunk: Buffer) => {
    text += chunk.toString();
    if (text.includes('Uvicorn running on')) stop.abort();
  });
  await engineLogs({
    paths: request.paths,
    env: request.env,
    docker: s.docker,
    follow: true,
    stdout: seen,
    stderr: seen,
    signal: stop.signal,
  });
  assert.match(text, /Uvicorn running on/);

  // down --purge: the container and the image it ran are gone.
  const down = await engineDown({ paths: request.paths, env: request.env, docker: s.docker, purge: true });
  assert.equal(down.containers.length, 1);
  assert.deepEqual(await s.ours(), []);
  assert.deepEqual(await s.docker.listContainers({ all: true, filters: { name: [container.Names[0]!.slice(1)] } }), []);
  if (removed) {
    assert.deepEqual(down.images, [SIM_IMAGE]);
    await assert.rejects(s.docker.getImage(SIM_IMAGE).inspect(), (err: { statusCode?: number }) => err.statusCode === 404);
  }
});

test('a second up with the same configuration reuses the running container; a changed flag replaces it', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const port = await freePort();
  const first = await up(s.request({ port }));
  const [before] = await s.ours();

  const stateDir = loadConfig({ env: { CS_LLM_HOME: s.home } }).paths.stateDir;
  const firstKey = readEngineKey(stateDir)!;
  assert.equal(before!.Labels[LABEL.keyId], engineKeyId(firstKey));

  const second = s.request({ port });
  const again = await up(second);
  assert.equal(again.reused, true);
  assert.equal(again.pulled, false);
  const [same] = await s.ours();
  assert.equal(same!.Id, before!.Id);
  assert.ok(second.events.some((e) => e.stage === 'note' && /reusing/.test(e.message)));
  assert.equal(readEngineKey(stateDir), firstKey, 'a reused engine keeps its key');

  const changed = await up(s.request({ port, context: 4096 }));
  assert.equal(changed.reused, false);
  assert.equal(changed.replaced, true);
  assert.equal(changed.maxModelLen, 4096);
  const after = await s.ours();
  assert.equal(after.length, 1);
  assert.notEqual(after[0]!.Id, before!.Id);
  assert.notEqual(after[0]!.Labels[LABEL.configHash], before!.Labels[LABEL.configHash]);
  assert.equal(first.baseUrl, changed.baseUrl);
  // A new engine, a new key; the old one no longer opens anything.
  const secondKey = readEngineKey(stateDir)!;
  assert.notEqual(secondKey, firstKey);
  const chat = (key: string) =>
    fetch(`${changed.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({ model: changed.servedName, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 2 }),
    });
  assert.equal((await chat(secondKey)).status, 200);
  assert.equal((await chat(firstKey)).status, 401);

  // With its key lost, the running engine cannot be called: it is replaced, not reused.
  rmSync(engineKeyFile(stateDir));
  const lost = s.request({ port, context: 4096 });
  const replaced = await up(lost);
  assert.equal(replaced.reused, false);
  assert.ok(lost.events.some((e) => e.stage === 'note' && /not started with the key on file/.test(e.message)));
  assert.equal((await chat(readEngineKey(stateDir)!)).status, 200);
});

test('an image tag that is not in the registry is a clear error, and nothing is created', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const missing = `${SIM_IMAGE.replace(/:[^:/]+$/, '')}:no-such-tag`;
  await assert.rejects(up(s.request({ port: await freePort(), image: missing })), (err: unknown) => {
    assert.ok(err instanceof EnvironmentError, String(err));
    assert.match(err.message, /cannot pull image .*:no-such-tag: the engine image is not available/);
    assert.match(err.next!, /--image/);
    return true;
  });
  assert.deepEqual(await s.ours(), []);
});

test('a port already in use is refused before anything is pulled or created, naming --port', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const blocker: Server = createServer();
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => blocker.close(() => resolve())));
  const port = (blocker.address() as { port: number }).port;
  const request = s.request({ port });
  await assert.rejects(up(request), (err: unknown) => {
    assert.ok(err instanceof ConflictError, String(err));
    assert.match(err.message, new RegExp(`port ${port} on 127\\.0\\.0\\.1 is already in use`));
    assert.match(err.next!, /--port/);
    return true;
  });
  assert.ok(!request.events.some((e) => e.stage === 'pulling'));
  assert.deepEqual(await s.ours(), []);
});

test('an engine that crashes at start with a CUDA OOM line fails with that diagnosis and leaves no container', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const oom =
    'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB of which 1.10 GiB is free.';
  const request = s.request({ port: await freePort() }, { extraEnv: { SIM_CRASH_AT_START: oom } });
  await assert.rejects(up(request), (err: unknown) => {
    assert.ok(err instanceof EngineError, String(err));
    assert.match(err.message, /the GPU ran out of memory/);
    assert.match(err.next!, /--context/);
    assert.ok(
      err.details.some((line) => line.includes('CUDA out of memory')),
      err.details.join('\n'),
    );
    return true;
  });
  assert.deepEqual(await s.ours(), []);
});

test('a slow load shows the readiness states in order, with the shard progress from the logs', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const request = s.request({ port: await freePort() }, { extraEnv: { SIM_LOAD_TIME_MS: '3000' } });
  await up(request);
  assert.deepEqual(readinessStates(request.events), ['starting', 'loading', 'healthy', 'serving']);
  const percents = request.events.flatMap((e) => (e.stage === 'readiness' && e.percent !== undefined ? [e.percent] : []));
  assert.ok(percents.length >= 2, `percent events: ${percents.join(', ')}`);
  assert.deepEqual(
    [...percents].sort((a, b) => a - b),
    percents,
  );
});

test('a model that does not fit is refused before any pull, with the reason and what would fit', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const fixture = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'rtx4090-display');
  const request = s.request(
    { port: await freePort(), gpus: 'all', model: 'qwen2.5-32b-instruct-awq', context: 32768 },
    { env: { ...process.env, CS_LLM_HOME: s.home, PATH: `${fixture}:${process.env.PATH}` } },
  );
  await assert.rejects(up(request), (err: unknown) => {
    assert.ok(err instanceof FitError, String(err));
    assert.match(err.message, /qwen2\.5-32b-instruct-awq does not fit GPU 0/);
    assert.match(err.next!, /--model|--context/);
    return true;
  });
  assert.ok(!request.events.some((e) => e.stage === 'pulling'));
  assert.deepEqual(await s.ours(), []);
});

const restartDocker = setNvidiaHookMode;

test('GPU requests: with the NVIDIA hook the container gets DeviceRequests and serves; without it, the no-runtime diagnosis', async (t) => {
  const s = await setup(t);
  if (!s) return;
  // A switch restarts the shared dockerd and stops every container: only where this run owns the engine.
  const refusal = dockerRestartRefusal();
  if (refusal) {
    t.skip(refusal);
    return;
  }
  t.after(() => restartDocker('without'));
  const fixture = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'a100-80gb');
  const env = { ...process.env, CS_LLM_HOME: s.home, PATH: `${fixture}:${process.env.PATH}` };

  await restartDocker('with');
  assert.deepEqual(await probeGpuRuntime(s.docker, { mode: 'ids', ids: ['0'] }, instanceIdFor(s.home)), { verdict: 'ok' });
  const port = await freePort();
  // The vllm engine's own path (HF cache mount included), with the simulator standing in for vLLM's image.
  const hfCacheDir = join(s.home, 'hf-cache');
  const result = await up(s.request({ port, kind: 'vllm', gpus: 'all', model: 'qwen2.5-7b-instruct-awq', hfCacheDir }, { env }));
  assert.equal(result.engine, 'vllm');
  assert.equal(result.gpus, 'all');
  assert.deepEqual(result.gpuNames, ['0: NVIDIA A100-SXM4-80GB']);
  const [container] = await s.ours();
  const info = await s.docker.getContainer(container!.Id).inspect();
  assert.deepEqual(info.HostConfig.Binds, [`${hfCacheDir}:/cache/huggingface`]);
  assert.equal(info.HostConfig.IpcMode, 'private');
  assert.equal(info.HostConfig.ShmSize, Math.floor(10.24 * 1024 ** 3));
  assert.equal(info.Config.User, `${process.getuid!()}:${process.getgid!()}`);
  const requests = (info.HostConfig.DeviceRequests ?? []).map(({ Driver, Count, Capabilities }) => ({ Driver, Count, Capabilities }));
  assert.deepEqual(requests, [{ Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }]);
  // dockerd's nvidia driver puts the GPU choice into the container's environment through the hook.
  // (the engine's own process environment, which an exec'd process does not inherit).
  const script =
    'process.stdout.write(require("fs").readFileSync("/proc/1/environ", "utf8").split("\\0").filter((v) => v.startsWith("NVIDIA_")).join(" "))';
  const seen = await execa('docker', ['exec', container!.Id, '/usr/local/bin/node', '-e', script]);
  assert.match(seen.stdout, /NVIDIA_VISIBLE_DEVICES=all/);
  await engineDown({ paths: loadConfig({ env }).paths, env, docker: s.docker, purge: false });

  await restartDocker('without');
  // The quick check before a pull says so in about a second...
  const probe = await probeGpuRuntime(s.docker, { mode: 'all' }, instanceIdFor(s.home));
  assert.equal(probe.verdict, 'missing');
  // ...and so does the start itself (the image is here now, so up goes straight to it).
  await assert.rejects(up(s.request({ port, gpus: '0', model: 'qwen2.5-7b-instruct-awq' }, { env })), (err: unknown) => {
    assert.ok(err instanceof EnvironmentError, String(err));
    assert.match(err.message, /Docker cannot give GPUs to containers/);
    assert.match(err.next!, /nvidia-container-toolkit/);
    assert.ok(
      err.details.some((d) => d.includes('could not select device driver "nvidia"')),
      err.details.join('\n'),
    );
    return true;
  });
  assert.deepEqual(await s.ours(), []);
});

test('the real CLI: up --json (engine + chat daemon in front), status, logs and down', async (t) => {
  const s = await setup(t);
  if (!s) return;
  const port = await freePort();
  const daemonPort = await freePort();
  const env = { CS_LLM_HOME: s.home, CS_LLM_DAEMON_PORT: String(daemonPort) };
  t.after(() => runCli(['daemon', 'stop'], { env }));
  const upRun = await runCli(['up', '--engine', 'sim', '--image', SIM_IMAGE, '--port', String(port), '--json'], {
    env,
    timeoutMs: 120_000,
  });
  assert.equal(upRun.exitCode, 0, String(upRun.stderr));
  const result = JSON.parse(String(upRun.stdout)) as {
    baseUrl: string;
    servedName: string;
    curl: string;
    mode: string;
    apiKeyFile: string;
    daemon: { url: string };
  };
  // The key is named, never printed; the engine port wants it, and the daemon in front has it.
  const key = readFileSync(result.apiKeyFile, 'utf8').trim();
  assert.equal(statSync(result.apiKeyFile).mode & 0o777, 0o600);
  assert.ok(!String(upRun.stdout).includes(key) && !String(upRun.stderr).includes(key));
  const direct = (headers: Record<string, string>) =>
    fetch(`${result.baseUrl}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ model: result.servedName, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 5 }),
    });
  assert.equal((await direct({})).status, 401);
  assert.equal((await direct({ authorization: `Bearer ${key}` })).status, 200);
  assert.equal(result.baseUrl, `http://127.0.0.1:${port}/v1`);
  assert.equal(result.mode, 'container');
  assert.equal(result.daemon.url, `http://127.0.0.1:${daemonPort}`);
  assert.match(result.curl, new RegExp(`curl -s http://127\\.0\\.0\\.1:${daemonPort}/v1/chat/completions .*x-session-id`));
  // The daemon proxies to the engine and remembers the session.
  const chat = await fetch(`${result.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'cli-test-1' },
    body: JSON.stringify({ model: result.servedName, messages: [{ role: 'user', content: 'Hello' }], max_tokens: 5 }),
  });
  assert.equal(chat.status, 200, await chat.clone().text());
  assert.equal(chat.headers.get('x-session-id'), 'cli-test-1');
  // The daemon's /metrics still relays the engine's figures.
  const metrics = await (await fetch(`${result.daemon.url}/metrics`)).text();
  assert.match(metrics, /^cs_llm_engine_up\{upstream="[^"]+"\} 1$/m);
  assert.match(metrics, /^cs_llm_engine_requests_running\{upstream="[^"]+"\} \d+$/m);
  // A second up reuses the engine and the daemon, which keeps the engine's key.
  const again = await runCli(['up', '--engine', 'sim', '--image', SIM_IMAGE, '--port', String(port), '--json'], {
    env,
    timeoutMs: 120_000,
  });
  const reused = JSON.parse(String(again.stdout)) as { reused: boolean; daemon: { reused: boolean; url: string } };
  assert.deepEqual([reused.reused, reused.daemon.reused], [true, true]);
  const afterReuse = await fetch(`${reused.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: result.servedName, messages: [{ role: 'user', content: 'Again' }], max_tokens: 5 }),
  });
  assert.equal(afterReuse.status, 200);
  // A changed engine has a new key, so the daemon that held the old one is restarted with it.
  const changed = await runCli(['up', '--engine', 'sim', '--image', SIM_IMAGE, '--port', String(port), '--context', '4096', '--json'], {
    env,
    timeoutMs: 120_000,
  });
  const replaced = JSON.parse(String(changed.stdout)) as { reused: boolean; daemon: { reused: boolean; url: string } };
  assert.deepEqual([replaced.reused, replaced.daemon.reused], [false, false]);
  assert.notEqual(readFileSync(result.apiKeyFile, 'utf8').trim(), key);
  const afterChange = await fetch(`${replaced.daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: result.servedName, messages: [{ role: 'user', content: 'Changed' }], max_tokens: 5 }),
  });
  assert.equal(afterChange.status, 200, await afterChange.clone().text());
  // Progress went to stderr as NDJSON, one object per line.
  const progress = String(upRun.stderr)
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { type: string; stage: string });
  assert.ok(progress.every((p) => p.type === 'progress'));
  assert.ok(progress.some((p) => p.stage === 'readiness'));

  const status = await runCli(['status', '--json'], { env });
  assert.equal(status.exitCode, 0, String(status.stderr));
  const report = JSON.parse(String(status.stdout)) as { engines: Array<{ state: string; health: string; port: number }> };
  assert.deepEqual(
    report.engines.map((e) => [e.state, e.health, e.port]),
    [['running', 'ok', port]],
  );

  const plain = await runCli(['status'], { env });
  assert.match(
    String(plain.stdout),
    new RegExp(`state=running restarts=0 crash_loop=false health=ok .*endpoint=http://127\\.0\\.0\\.1:${port}/v1`),
  );
  assert.match(String(plain.stdout), new RegExp(`daemon=running url=http://127\\.0\\.0\\.1:${daemonPort} pid=\\d+ healthy=true`));

  const logs = await runCli(['logs', '--tail', '50'], { env });
  assert.equal(logs.exitCode, 0);
  assert.match(String(logs.stdout), /Uvicorn running on/);

  const down = await runCli(['down'], { env });
  assert.equal(down.exitCode, 0);
  assert.match(String(down.stdout), /removed container cs-llm-engine-/);
  assert.match(String(down.stdout), /stopped chat daemon \d+/);
  assert.deepEqual(await s.ours(), []);
  const none = await runCli(['status'], { env });
  assert.match(String(none.stdout), /no engine/);
});
