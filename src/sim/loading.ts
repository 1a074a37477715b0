/*
 * The simulator's model "load": vLLM's shard progress lines spread over --load-time-ms, then its loaded and
 * Uvicorn lines, so readiness and log diagnosis see what they would see from vLLM.
 */

import { loadedLines, shardProgressLine, SHARD_COUNT, uvicornRunningLine, type LoadedMemory } from './logs.js';

/** Logs the load and calls onLoaded at its end; returns the timers to clear if the simulator closes first. */
export function simulateLoading(
  options: { log: (line: string) => void; loadTimeMs: number; maxModelLen: number },
  memory: LoadedMemory,
  url: string,
  onLoaded: () => void,
): NodeJS.Timeout[] {
  const { log, loadTimeMs, maxModelLen } = options;
  const started = Date.now();
  const finish = () => {
    onLoaded();
    for (const line of loadedLines({ loadSeconds: (Date.now() - started) / 1000, maxModelLen, memory, url })) log(line);
    log(uvicornRunningLine(url));
  };
  log(shardProgressLine(0, 0));
  if (loadTimeMs <= 0) {
    for (let done = 1; done <= SHARD_COUNT; done++) log(shardProgressLine(done, 0));
    finish();
    return [];
  }
  const timers: NodeJS.Timeout[] = [];
  for (let done = 1; done <= SHARD_COUNT; done++) {
    timers.push(
      setTimeout(
        () => {
          log(shardProgressLine(done, (Date.now() - started) / 1000));
          if (done === SHARD_COUNT) finish();
        },
        (loadTimeMs * done) / SHARD_COUNT,
      ),
    );
  }
  return timers;
}
