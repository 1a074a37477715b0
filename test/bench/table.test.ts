import { test } from 'node:test';
import assert from 'node:assert/strict';
import { speedTable, type Measured, type SpeedFigures } from '../../src/bench/table.js';

const measured = (name: string, concurrency: number, requestsPerSecond: number, p50Ms: number, p99Ms: number): Measured => ({
  name,
  concurrency,
  requestsPerSecond,
  p50Ms,
  p99Ms,
  meanMs: p50Ms,
  requests: 1000,
  errors: 0,
  reportedOverheadP50Ms: null,
  latencies: [],
  elapsedMs: 1000,
  daemonCpuUs: name === 'direct' || name === 'relay' ? null : 200,
});

function figures(daemonP50Ms: number): SpeedFigures {
  return {
    latency: {
      direct: measured('direct', 1, 5000, 0.2, 1.0),
      relay: measured('relay', 1, 3000, 0.5, 2.0),
      stateless: measured('stateless', 1, 3000, daemonP50Ms, 1.9),
      session: measured('session', 1, 1500, 0.9, 2.5),
    },
    throughput: {
      direct: measured('direct', 50, 10_000, 5, 9),
      relay: measured('relay', 50, 5000, 10, 20),
      stateless: measured('stateless', 50, 4600, 11, 21),
      session: measured('session', 50, 2900, 17, 30),
    },
    minute: measured('session', 50, 3000, 16, 30),
    streams: {
      direct: measured('direct', 50, 5000, 10, 20),
      relay: measured('relay', 50, 4000, 12, 22),
      daemon: measured('daemon', 50, 3300, 15, 25),
    },
    streamIdentical: true,
    relayStreamIdentical: true,
    rss: {
      idle: 75,
      afterLoad: 146,
      peak: 189,
      idleAnon: 27,
      afterLoadAnon: 98,
      settled: 63,
      settledAnon: 16,
      settleSeconds: 20,
      loadSeconds: 60,
    },
  };
}

const row = (table: string, start: string) => table.split('\n').find((line) => line.startsWith(start))!;

test('the table gives each goal its verdict from the figures of the same run', () => {
  const table = speedTable(figures(0.52));
  assert.match(row(table, 'req/s at 50 connections, stateless'), /0\.92x of relay .* met$/);
  assert.match(row(table, 'req/s at 50 connections, session turns'), /0\.58x of relay .* NOT met$/);
  assert.match(row(table, 'SSE streams/s'), /0\.82x of relay, 0\.66x of direct .* met$/);
  assert.match(row(table, 'daemon RSS MiB'), /63 \/ 146 \/ 189 .* met$/);
  // Added latency: the daemon's p50 and p99 over the engine's, the p50 against the relay's (0.32 against 0.30 ms).
  assert.match(row(table, 'added at 1 connection, p50 / p99 ms, stateless'), /0\.320 \/ 0\.900 .*p50 \+0\.020 .* {2}met$/);
  assert.match(row(table, 'added at 1 connection, p50 / p99 ms, session'), /0\.700 \/ 1\.500 .*p50 \+0\.400 .*NOT met$/);
});

test('a daemon ahead of the relay at 1 connection shows a negative difference, not "+-"', () => {
  const line = row(speedTable(figures(0.44)), 'added at 1 connection, p50 / p99 ms, stateless');
  assert.match(line, /p50 -0\.060 /);
  assert.doesNotMatch(line, /\+-/);
});
