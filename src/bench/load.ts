import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';
import { percentile } from '../metrics/quantile.js';

export interface LoadOptions {
  url: string;
  path: string;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  /** Body and headers of the next request of worker w. */
  request: (worker: number) => { body: string; headers: Record<string, string> };
  /** Given each 200 reply's body (decoded after its latency was taken), e.g. to chain the next request to it. */
  onReply?: (worker: number, body: string) => void;
}

export interface LoadResult {
  requests: number;
  errors: number;
  requestsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanMs: number;
  /** The daemon's own X-CS-LLM-Overhead-Ms, p50, when it sent one. */
  reportedOverheadP50Ms: number | null;
  /** Every request's latency, sorted, and the measured time: to merge several runs of one path. */
  latencies: number[];
  elapsedMs: number;
}

/**
 * A closed-loop load generator: `concurrency` workers, each sending its next request as soon as the last
 * one answered, over a pool of keep-alive connections (one per worker). Latency is measured per request
 * from send to the last byte of the body.
 */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const origin = new URL(options.url).origin;
  const pool = new Pool(origin, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 60_000 });
  try {
    const phase = async (durationMs: number, record: boolean) => {
      const latencies: number[] = [];
      const overheads: number[] = [];
      let errors = 0;
      const started = performance.now();
      const end = started + durationMs;
      const worker = async (w: number) => {
        while (performance.now() < end) {
          const { body, headers } = options.request(w);
          const t0 = performance.now();
          try {
            const res = await pool.request({
              path: options.path,
              method: 'POST',
              headers: { 'content-type': 'application/json', ...headers },
              body,
            });
            // Every path reads its body the same way; a reply is decoded for onReply only after it is timed.
            const chunks: Buffer[] = [];
            for await (const chunk of res.body) chunks.push(chunk as Buffer);
            const t1 = performance.now();
            if (options.onReply && res.statusCode === 200) options.onReply(w, Buffer.concat(chunks).toString('utf8'));
            if (res.statusCode !== 200) errors++;
            else if (record) {
              latencies.push(t1 - t0);
              const overhead = res.headers['x-cs-llm-overhead-ms'];
              if (typeof overhead === 'string') overheads.push(Number(overhead));
            }
          } catch {
            errors++;
          }
        }
      };
      await Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
      return { latencies, overheads, errors, elapsedMs: performance.now() - started };
    };
    await phase(options.warmupMs, false);
    const { latencies, overheads, errors, elapsedMs } = await phase(options.durationMs, true);
    latencies.sort((a, b) => a - b);
    overheads.sort((a, b) => a - b);
    return {
      requests: latencies.length,
      errors,
      requestsPerSecond: latencies.length / (elapsedMs / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
      reportedOverheadP50Ms: overheads.length > 0 ? percentile(overheads, 50) : null,
      latencies,
      elapsedMs,
    };
  } finally {
    await pool.close();
  }
}
