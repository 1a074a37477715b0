import type Docker from 'dockerode';
import { engineStatus } from './images.js';

/** Every container these tests create carries this label, so leftovers can be found and removed. */
export const TEST_LABEL = 'cs-llm.test';

/** Removes containers an earlier run left behind (killed before its clean-up ran). */
export async function removeLabelledContainers(docker: Docker, value: string): Promise<void> {
  const leftovers = await docker.listContainers({ all: true, filters: { label: [`${TEST_LABEL}=${value}`] } });
  await Promise.all(leftovers.map((info) => removeContainer(docker.getContainer(info.Id))));
}

/** Kills and removes; a container already gone is fine. */
export async function removeContainer(container: Docker.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    if (engineStatus(err) !== 404) throw err;
  }
}

/** Container logs are multiplexed (an 8-byte header per frame) when the container has no TTY. */
export function demultiplexLogs(buffer: Buffer): string {
  const parts: Buffer[] = [];
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

export async function lastLogLines(container: Docker.Container, lines = 50): Promise<string> {
  const logs = (await container.logs({ stdout: true, stderr: true, tail: lines, follow: false })) as unknown as Buffer;
  return demultiplexLogs(logs);
}
