import type { TestContext } from 'node:test';
import OpenAI from 'openai';
import { startSimulator, type RunningSimulator, type SimulatorOptions } from '../../src/sim/server.js';

/** A simulator on a free loopback port, closed when the test ends. */
export async function simFor(t: TestContext, options: SimulatorOptions = {}): Promise<RunningSimulator> {
  const sim = await startSimulator({ port: 0, ...options });
  t.after(() => sim.close());
  return sim;
}

/** The real openai client pointed at the simulator; no retries, so each fault shows as it is. */
export function clientFor(sim: RunningSimulator, options: { apiKey?: string; timeout?: number } = {}): OpenAI {
  return new OpenAI({ baseURL: `${sim.url}/v1`, apiKey: options.apiKey ?? 'x', maxRetries: 0, timeout: options.timeout ?? 30_000 });
}

/** Waits until check() returns true, polling; for states that have no event to await (metrics, counters). */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Reads one sample of a Prometheus text exposition ("name{labels} value"). */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const space = line.lastIndexOf(' ');
    const series = line.slice(0, space);
    const bare = series.split('{')[0];
    if (bare !== name) continue;
    if (labels && !series.includes(labels)) continue;
    return Number(line.slice(space + 1));
  }
  return undefined;
}
