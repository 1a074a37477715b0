/*
 * Can Docker give GPUs to containers? Host files (nvidia-ctk, the hook, CDI specs) only hint at it; the
 * sure answer is Docker's own: start a container with the GPU request. This one uses an image that is
 * already here and an entrypoint that does not exist, so nothing runs and nothing is pulled: Docker
 * refuses the GPU request ("could not select device driver") before it ever looks for the entrypoint.
 * Run before pulling a multi-GB engine image, so a missing NVIDIA runtime is reported in a second.
 */

import type Docker from 'dockerode';
import { createLogger } from '../core/log.js';
import { diagnoseDockerError, dockerErrorMessage, type Diagnosis } from './diagnose.js';
import { LABEL, type GpuSelection } from './spec.js';

const log = createLogger('engine');

export type GpuRuntimeProbe =
  | { verdict: 'ok' }
  | { verdict: 'missing'; diagnosis: Diagnosis; message: string }
  /** No local image to probe with, or an answer we do not understand: the start itself will tell. */
  | { verdict: 'unknown'; reason: string };

export async function probeGpuRuntime(docker: Docker, gpus: GpuSelection, instance: string): Promise<GpuRuntimeProbe> {
  if (gpus.mode === 'none') return { verdict: 'ok' };
  const images = await docker.listImages();
  const image = images.filter((i) => (i.RepoTags ?? []).some((t) => t !== '<none>:<none>')).sort((a, b) => a.Size - b.Size)[0];
  const tag = image?.RepoTags?.find((t) => t !== '<none>:<none>');
  if (!tag) return { verdict: 'unknown', reason: 'no local image to probe with' };
  const request =
    gpus.mode === 'all'
      ? { Driver: 'nvidia', Count: -1, Capabilities: [['gpu']] }
      : { Driver: 'nvidia', DeviceIDs: gpus.ids, Capabilities: [['gpu']] };
  const container = await docker.createContainer({
    Image: tag,
    Entrypoint: ['/cs-llm-gpu-probe-does-not-exist'],
    Cmd: [],
    NetworkDisabled: true,
    Labels: { [LABEL.managed]: 'true', [LABEL.instance]: instance, 'cs-llm.purpose': 'gpu-probe' },
    HostConfig: { DeviceRequests: [request], AutoRemove: false },
  });
  try {
    await container.start();
    // Started after all (an image whose filesystem has that path?): the GPU request was accepted.
    return { verdict: 'ok' };
  } catch (err) {
    const message = dockerErrorMessage(err);
    const diagnosis = diagnoseDockerError(err);
    if (diagnosis?.kind === 'no-nvidia-runtime') return { verdict: 'missing', diagnosis, message };
    // The GPU request passed; the start failed on the missing entrypoint, as intended.
    if (/cs-llm-gpu-probe-does-not-exist|no such file or directory|executable file not found/i.test(message)) return { verdict: 'ok' };
    log('gpu probe: unexpected answer: %s', message);
    return { verdict: 'unknown', reason: message };
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}
