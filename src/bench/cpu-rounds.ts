/*
 * What `npm run bench:cpu` (src/bench/cpu.ts) computes from its rounds: tokens/s per path, each proxy's cost
 * against the engine alone with a bootstrap interval, and the table and verdict it prints.
 */

import { percentile } from '../metrics/quantile.js';

export type Path = 'engine' | 'relay' | 'daemon';
export const PATHS: Path[] = ['engine', 'relay', 'daemon'];

/** One path's side of a round: one request, or a block of them run by concurrent lanes. */
export interface Unit {
  /** Completion tokens, and the wall time from the first request sent to the last response ended. */
  tokens: number;
  ms: number;
  /** Tokens after the first, and the time from the first content to [DONE], summed over the requests. */
  streamTokens: number;
  streamMs: number;
  ttfts: number[];
}

export type Round = Record<Path, Unit>;

/** The two rates compared: while a reply streams, and over the whole run (time to first token and gaps included). */
type Rate = 'stream' | 'throughput';

export function tokensPerSecond(rounds: Round[], path: Path, rate: Rate): number {
  let tokens = 0;
  let ms = 0;
  for (const r of rounds) {
    tokens += rate === 'stream' ? r[path].streamTokens : r[path].tokens;
    ms += rate === 'stream' ? r[path].streamMs : r[path].ms;
  }
  return (tokens / ms) * 1000;
}

/** Cost of a proxy path in % of the engine's tokens/s: 1 - its tok/s / the engine's. */
export function costPercent(rounds: Round[], path: Path, rate: Rate): number {
  return (1 - tokensPerSecond(rounds, path, rate) / tokensPerSecond(rounds, 'engine', rate)) * 100;
}

/** 95% bootstrap interval of costPercent, resampling whole rounds (a fixed-seed generator: reruns agree). */
export function bootstrap(rounds: Round[], path: Path, rate: Rate, resamples = 2000): [number, number] {
  let state = 0x9e3779b9;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const costs: number[] = [];
  for (let i = 0; i < resamples; i++) {
    const sample = Array.from({ length: rounds.length }, () => rounds[Math.floor(random() * rounds.length)]!);
    costs.push(costPercent(sample, path, rate));
  }
  costs.sort((a, b) => a - b);
  return [percentile(costs, 2.5), percentile(costs, 97.5)];
}

export interface PathResult {
  /** Tokens per second while replies stream (first content to [DONE]), over the chats' own time. */
  streamTokensPerSecond: number;
  /** Tokens per second of the whole run: what the box delivers, time to first token and gaps included. */
  throughputTokensPerSecond: number;
  /** Against the engine alone, with 95% intervals (absent for the engine itself). */
  streamCostPercent?: number;
  streamCostInterval95?: [number, number];
  throughputCostPercent?: number;
  throughputCostInterval95?: [number, number];
  ttftP50Ms: number;
  ttftP90Ms: number;
  /** CPU milliseconds the proxy process spent per request, and the engine's per 1k tokens alongside. */
  cpuMsPerRequest?: number;
  cpuPerEngineCpuPercent?: number;
}

export interface Result {
  concurrency: number;
  rounds: number;
  requestsPerPath: number;
  meanCompletionTokens: number;
  paths: Record<Path, PathResult>;
}

const pct = (v: number) => `${v.toFixed(2)}%`;

export function table(results: Result[]): string {
  const lines: string[] = [];
  const header =
    'CHATS  PATH    STREAM tok/s  COST (95% CI)              RUN tok/s  COST (95% CI)              TTFT p50/p90      CPU/REQUEST  CPU/ENGINE CPU';
  lines.push(header);
  for (const r of results) {
    for (const path of PATHS) {
      const p = r.paths[path];
      const cost = (value?: number, ci?: [number, number]) =>
        value === undefined || !ci ? '' : `${pct(value)} (${pct(ci[0])}..${pct(ci[1])})`;
      lines.push(
        [
          String(r.concurrency).padEnd(7),
          path.padEnd(8),
          p.streamTokensPerSecond.toFixed(0).padEnd(14),
          cost(p.streamCostPercent, p.streamCostInterval95).padEnd(27),
          p.throughputTokensPerSecond.toFixed(0).padEnd(11),
          cost(p.throughputCostPercent, p.throughputCostInterval95).padEnd(27),
          `${p.ttftP50Ms.toFixed(2)}/${p.ttftP90Ms.toFixed(2)} ms`.padEnd(18),
          (p.cpuMsPerRequest === undefined ? '' : `${p.cpuMsPerRequest.toFixed(2)} ms`).padEnd(13),
          p.cpuPerEngineCpuPercent === undefined ? '' : pct(p.cpuPerEngineCpuPercent),
        ]
          .join('')
          .trimEnd(),
      );
    }
  }
  return lines.join('\n');
}

/** Met when the whole 95% interval of the daemon's streaming cost is under 1%, missed when it is all above. */
export function verdict(r: Result): string {
  const d = r.paths.daemon;
  const [low, high] = d.streamCostInterval95!;
  const what = `${r.concurrency} chat(s): the daemon's cost to the engine's streaming tokens/s is ${pct(d.streamCostPercent!)} (95% CI ${pct(low)}..${pct(high)}; bare relay ${pct(r.paths.relay.streamCostPercent!)})`;
  if (high < 1) return `${what}: target (under 1%) met`;
  if (low >= 1) return `${what}: target (under 1%) NOT met`;
  return `${what}: inconclusive, the interval holds 1%; more rounds (--rounds, --blocks) narrow it`;
}
