import { after, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type Docker from 'dockerode';
import { SIM_IMAGE, requireDocker } from '../helpers/docker.js';
import { TEST_LABEL, lastLogLines, removeContainer, removeLabelledContainers } from './containers.js';
import { engineStatus, ensureImage } from './images.js';
import { currentNvidiaHookMode, dockerRestartRefusal, setNvidiaHookMode, type NvidiaHookMode } from './nvidia-hook-mode.js';

// The switch other GPU-path tests rely on (scripts/ci/restart-docker.sh): with the stand-in hook on
// dockerd's PATH a container asking for GPUs starts and sees NVIDIA_VISIBLE_DEVICES; without it the
// engine refuses at start the way it does on a host with no NVIDIA runtime.

const TEST_LABEL_VALUE = 'nvidia-hook';
let modeBefore: NvidiaHookMode | 'unknown' | undefined;

after(async () => {
  // Leave dockerd as the next test file expects it: the mode it had, or CI's default (without).
  if (modeBefore !== undefined) await setNvidiaHookMode(modeBefore === 'with' ? 'with' : 'without');
});

async function engineForSwitching(t: TestContext): Promise<Docker | null> {
  const docker = await requireDocker(t);
  if (!docker) return null;
  const refusal = dockerRestartRefusal();
  if (refusal) {
    t.skip(refusal);
    return null;
  }
  modeBefore ??= await currentNvidiaHookMode();
  return docker;
}

/** Runs node in the simulator image with a GPU request and returns what it printed. */
async function runWithGpuRequest(t: TestContext, docker: Docker, request: Docker.DeviceRequest): Promise<string> {
  await ensureImage(docker, SIM_IMAGE);
  const container = await docker.createContainer({
    Image: SIM_IMAGE,
    Entrypoint: ['/usr/local/bin/node', '-e', 'process.stdout.write(String(process.env.NVIDIA_VISIBLE_DEVICES))'],
    Cmd: [],
    Labels: { [TEST_LABEL]: TEST_LABEL_VALUE },
    HostConfig: { DeviceRequests: [{ Driver: 'nvidia', Capabilities: [['gpu']], ...request }] },
  });
  t.after(() => removeContainer(container));
  await container.start();
  const exit = (await container.wait()) as { StatusCode: number };
  const output = await lastLogLines(container);
  assert.equal(exit.StatusCode, 0, `the container failed: ${output}`);
  return output;
}

test(
  'with the stand-in nvidia hook on its PATH, dockerd starts containers that ask for all GPUs or one',
  { timeout: 180_000 },
  async (t) => {
    const docker = await engineForSwitching(t);
    if (!docker) return;
    await removeLabelledContainers(docker, TEST_LABEL_VALUE);
    await setNvidiaHookMode('with');
    assert.equal(await currentNvidiaHookMode(), 'with');

    assert.equal(await runWithGpuRequest(t, docker, { Count: -1 }), 'all');
    assert.equal(await runWithGpuRequest(t, docker, { DeviceIDs: ['0'] }), '0');
  },
);

test(
  'without the hook, a container that asks for GPUs is refused at start: could not select device driver "nvidia"',
  { timeout: 180_000 },
  async (t) => {
    const docker = await engineForSwitching(t);
    if (!docker) return;
    await setNvidiaHookMode('without');
    assert.equal(await currentNvidiaHookMode(), 'without');

    await assert.rejects(runWithGpuRequest(t, docker, { Count: -1 }), (err: unknown) => {
      assert.equal(engineStatus(err), 500);
      assert.match((err as Error).message, /could not select device driver "nvidia" with capabilities: \[\[gpu\]\]/);
      return true;
    });
  },
);
