import assert from 'node:assert/strict';
import { mkdtempSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { loadConfig } from '../../src/core/config.js';
import { listEngineContainers } from '../../src/engine/containers.js';
import { engineDown } from '../../src/engine/manage.js';
import { ENGINE_NETWORK } from '../../src/engine/network.js';
import { instanceIdFor } from '../../src/engine/spec.js';
import { up } from '../../src/engine/up.js';
import { requireDocker, SIM_IMAGE } from '../helpers/docker.js';
import { freePort } from '../helpers/ports.js';

/**
 * The engine container on the real dockerd is confined: reachable only through its loopback-published port.
 * Reachability is probed from inside other containers (never from this host to a bridge address), with a
 * sibling on Docker's default bridge as the control that the probe itself works.
 */

/** Runs node in a throwaway container on `network` and reports what each URL answered ("200", or the error). */
async function probeFrom(network: string, urls: string[]): Promise<string[]> {
  const script = `Promise.all(${JSON.stringify(urls)}.map((u) => fetch(u, { signal: AbortSignal.timeout(3000) }).then((r) => String(r.status), (e) => 'error: ' + (e.cause?.code ?? e.name)))).then((r) => console.log(JSON.stringify(r)))`;
  const run = await execa('docker', ['run', '--rm', '--network', network, '--entrypoint', '/usr/local/bin/node', SIM_IMAGE, '-e', script], {
    timeout: 60_000,
  });
  return JSON.parse(run.stdout) as string[];
}

/** A process inside the container reads a file of its own /proc. */
async function readInContainer(id: string, script: string): Promise<string> {
  return (await execa('docker', ['exec', id, '/usr/local/bin/node', '-e', script])).stdout;
}

test('the engine is on a network of its own, unreachable from other containers, with private IPC, no capabilities and no root', async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return;
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-confined-'));
  const env = { ...process.env, CS_LLM_HOME: home };
  const sibling = `cs-llm-test-sibling-${process.pid}`;
  t.after(async () => {
    await execa('docker', ['rm', '-f', sibling], { reject: false });
    await engineDown({ paths: loadConfig({ env }).paths, purge: false, env, docker });
    rmSync(home, { recursive: true, force: true });
  });
  const port = await freePort();
  const loaded = loadConfig({ env, flags: { engine: { kind: 'sim', image: SIM_IMAGE, port, pullPolicy: 'if-missing' } } });
  const result = await up({ engine: loaded.config.engine, paths: loaded.paths, env });
  assert.equal(result.mode, 'container');
  const [container] = await listEngineContainers(docker, instanceIdFor(home));
  const info = await docker.getContainer(container!.Id).inspect();

  // The control: a container on the default bridge, reached by another one there.
  await execa('docker', ['run', '-d', '--name', sibling, SIM_IMAGE, '--host', '0.0.0.0', '--port', '8000', '--model', 'm']);
  const siblingIp = (await docker.getContainer(sibling).inspect()).NetworkSettings.Networks.bridge!.IPAddress;
  const networks = Object.entries(info.NetworkSettings.Networks);
  const engineIp = networks[0]![1].IPAddress;
  // Any HTTP status means the connection was made (the simulator may refuse a Host that is not its own: 403).
  let control = '';
  for (let i = 0; i < 20 && !/^\d{3}$/.test(control); i++) {
    [control] = await probeFrom('bridge', [`http://${siblingIp}:8000/health`]);
    if (!/^\d{3}$/.test(control)) await new Promise((r) => setTimeout(r, 250));
  }
  assert.match(control, /^\d{3}$/, 'a container on the default bridge reaches its neighbour: the probe works');
  const [fromBridge] = await probeFrom('bridge', [`http://${engineIp}:8000/health`]);
  assert.match(fromBridge!, /^error: /, `a container on the default bridge reached the engine at ${engineIp}: ${fromBridge}`);
  const [fromSameNetwork] = await probeFrom(ENGINE_NETWORK, [`http://${engineIp}:8000/health`]);
  assert.match(fromSameNetwork!, /^error: /, `a container on ${ENGINE_NETWORK} reached the engine: ${fromSameNetwork}`);
  // Through the loopback-published port it serves as before.
  assert.equal((await fetch(`http://127.0.0.1:${port}/health`)).status, 200);

  assert.deepEqual(
    networks.map(([name]) => name),
    [ENGINE_NETWORK],
  );
  const network = (await docker.getNetwork(ENGINE_NETWORK).inspect()) as {
    Driver: string;
    Internal: boolean;
    Options: Record<string, string>;
  };
  assert.equal(network.Driver, 'bridge');
  assert.equal(network.Options['com.docker.network.bridge.enable_icc'], 'false');
  assert.equal(network.Options['com.docker.network.bridge.host_binding_ipv4'], '127.0.0.1');

  assert.equal(info.HostConfig.IpcMode, 'private');
  assert.deepEqual(info.HostConfig.CapDrop, ['ALL']);
  assert.deepEqual(info.HostConfig.SecurityOpt, ['no-new-privileges']);
  assert.equal(info.HostConfig.PidsLimit, 256);
  assert.equal(info.Config.User, '65534:65534');
  // What the engine process itself has: its own IPC namespace (not the host's /dev/shm), no capabilities, no way to gain any.
  const ipc = await readInContainer(container!.Id, 'process.stdout.write(require("fs").readlinkSync("/proc/1/ns/ipc"))');
  assert.notEqual(ipc, readlinkSync('/proc/self/ns/ipc'));
  const status = await readInContainer(container!.Id, 'process.stdout.write(require("fs").readFileSync("/proc/1/status", "utf8"))');
  assert.match(status, /^CapEff:\s+0000000000000000$/m);
  assert.match(status, /^NoNewPrivs:\s+1$/m);
  assert.match(status, /^Uid:\s+65534\s/m);
});
