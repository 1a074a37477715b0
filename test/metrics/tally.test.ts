import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from '../../src/metrics/prom-client.js';
import { TallyCounter, TallyHistogram } from '../../src/metrics/tally.js';

const BUCKETS = [0.005, 0.01, 0.1, 1, 5];

test("tallies render on /metrics as prom-client's Counter and Histogram do for the same updates", async () => {
  const prom = new Registry();
  const tally = new Registry();
  const pCount = new Counter({ name: 'x_requests_total', help: 'Requests.', labelNames: ['route', 'status'], registers: [prom] });
  const pPlain = new Counter({ name: 'x_tokens_total', help: 'Tokens.', registers: [prom] });
  const pHist = new Histogram({
    name: 'x_seconds',
    help: 'Time "quoted"\nand a newline.',
    labelNames: ['route'],
    buckets: BUCKETS,
    registers: [prom],
  });
  const pUnlabelled = new Histogram({ name: 'x_overhead_seconds', help: 'Overhead.', buckets: BUCKETS, registers: [prom] });
  const tCount = new TallyCounter({ name: 'x_requests_total', help: 'Requests.', registry: tally, labelled: true });
  const tPlain = new TallyCounter({ name: 'x_tokens_total', help: 'Tokens.', registry: tally });
  const tHist = new TallyHistogram({
    name: 'x_seconds',
    help: 'Time "quoted"\nand a newline.',
    buckets: BUCKETS,
    registry: tally,
    labelled: true,
  });
  const tUnlabelled = new TallyHistogram({ name: 'x_overhead_seconds', help: 'Overhead.', buckets: BUCKETS, registry: tally });
  // Before any update: the unlabelled ones show at zero, the labelled ones show nothing.
  assert.equal(await tally.metrics(), await prom.metrics());

  const routes = ['/v1/chat/completions', '/healthz', 'a "quoted" \\ route'];
  for (let i = 0; i < 200; i++) {
    const route = routes[i % 3]!;
    const status = String([200, 502, 429][i % 3 === 0 ? i % 2 : 2]);
    const seconds = [0.001, 0.005, 0.0051, 0.5, 7, 0.1][i % 6]! * (1 + i / 1000);
    pCount.inc({ route, status });
    tCount.series(`${route}\u0000${status}`, () => ({ route, status })).inc();
    pPlain.inc(i);
    tPlain.only.inc(i);
    pHist.observe({ route }, seconds);
    tHist.series(route, () => ({ route })).observe(seconds);
    pUnlabelled.observe(seconds / 10);
    tUnlabelled.only.observe(seconds / 10);
  }
  // A value on a bound counts in that bucket; one above every bound only in +Inf.
  pHist.observe({ route: 'edge' }, 1);
  tHist.series('edge', () => ({ route: 'edge' })).observe(1);
  pHist.observe({ route: 'edge' }, 99);
  tHist.series('edge', () => ({ route: 'edge' })).observe(99);

  const text = await tally.metrics();
  assert.equal(text, await prom.metrics());
  assert.match(text, /x_seconds_bucket\{le="1",route="edge"\} 1\n/);
});
