/** @jsxRuntime automatic */
/** @jsxImportSource react */
// (tsx applies the root tsconfig's react-jsx only to src/; the pragmas give test files the same JSX runtime.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { render } from 'ink-testing-library';
import { Dashboard } from '../../src/dashboard/view.js';
import { bar, plainLine, sparkline } from '../../src/dashboard/format.js';
import { initialState, type DashboardState } from '../../src/dashboard/state.js';

const NOW = Date.UTC(2026, 10, 29, 6, 0, 0);
const GiB = 1024 ** 3;

function busy(overrides: Partial<DashboardState> = {}): DashboardState {
  return {
    ...initialState('http://127.0.0.1:8080', 1000),
    reachable: true,
    lastScrapeAt: NOW,
    model: 'Qwen/Qwen2.5-14B-Instruct-AWQ',
    engineUp: true,
    uptimeSeconds: 3725,
    requestsPerSecond: 12.5,
    rpsHistory: [0, 2, 4, 8, 12.5],
    latency: { p50: 0.12, p95: 0.34, p99: 0.8 },
    ttft: { p50: 0.04, p95: 0.09, p99: 0.1 },
    tokensPerSecond: 340,
    inFlight: 3,
    queued: 1,
    errorRate: 0,
    rateLimitedRate: 0.02,
    sessionsActive: 14,
    kvCacheUsage: 0.42,
    engineRunning: 3,
    engineWaiting: 0,
    gpus: [
      {
        index: 0,
        name: 'NVIDIA GeForce RTX 4090',
        memoryUsedBytes: 18 * GiB,
        memoryTotalBytes: 24 * GiB,
        utilization: 0.87,
        temperatureC: 71,
        powerW: 312.4,
      },
    ],
    events: [{ id: 1, at: NOW - 5000, level: 'info', text: 'connected to http://127.0.0.1:8080' }],
    ...overrides,
  };
}

/** ink-testing-library draws 100 columns wide. */
function frame(state: DashboardState, columns = 100): string {
  const { lastFrame, unmount } = render(<Dashboard state={state} color={false} columns={columns} now={NOW} />);
  const text = lastFrame() ?? '';
  unmount();
  return text;
}

test('a busy daemon shows its model, rates, latency quantiles, engine and GPU figures', () => {
  const text = frame(busy());
  assert.match(text, /daemon up 1h 2m/);
  assert.match(text, /engine up/);
  assert.match(text, /model Qwen\/Qwen2\.5-14B-Instruct-AWQ/);
  assert.match(text, /requests\s+12\.5\/s ▁▂▃▅█/);
  assert.match(text, /in flight 3 {2}queued 1/);
  assert.match(text, /p50 120 ms {2}p95 340 ms {2}p99 800 ms/);
  assert.match(text, /TTFT p50 40 ms {2}p95 90 ms/);
  assert.match(text, /340 tokens\/s/);
  assert.match(text, /errors 0% {2}429s 2\.0%/);
  assert.match(text, /sessions 14/);
  assert.match(text, /running 3 {2}waiting 0 {2}KV cache ████████░+ 42%/);
  assert.match(text, /GPU 0 +GeForce RTX 4090 {2}VRAM █+░+ 18\.0\/24\.0 GiB {2}util 87% {2}71°C {2}312 W/);
  assert.match(text, /q quits · every 1s/);
});

test('the event log is printed above the live panel', () => {
  const lines = frame(busy()).split('\n');
  assert.match(lines[0]!, /^05:59:55 connected to http:\/\/127\.0\.0\.1:8080$/);
  assert.match(lines[1]!, /^cs-llm /);
});

test('an unreachable daemon is said plainly, with the time it went away and the reason', () => {
  const text = frame(busy({ reachable: false, unreachableSince: NOW - 65_000, problem: 'ECONNREFUSED (http://127.0.0.1:8080)' }));
  assert.match(text, /daemon unreachable since 05:58:55 \(1m 5s\)/);
  assert.match(text, /ECONNREFUSED \(http:\/\/127\.0\.0\.1:8080\); retrying every 1s/);
});

test('no GPU figures and unknown values show as such, never as zeros', () => {
  const text = frame({ ...initialState('http://127.0.0.1:8080', 500), reachable: true, engineUp: false });
  assert.match(text, /engine down/);
  assert.match(text, /no GPU figures/);
  assert.match(text, /p50 - {2}p95 - {2}p99 -/);
  assert.match(text, /KV cache -/);
  assert.match(text, /every 500 ms/);
});

test('without color the frame holds no escape codes', () => {
  assert.doesNotMatch(frame(busy()), /\u001b\[/);
});

test('a narrow terminal gets a shorter sparkline and VRAM bar', () => {
  const wide = frame(busy({ rpsHistory: Array.from({ length: 60 }, (_, i) => i) }), 100);
  const narrow = frame(busy({ rpsHistory: Array.from({ length: 60 }, (_, i) => i) }), 80);
  for (const line of narrow.split('\n')) assert.ok(line.length <= 100, `no line wraps: ${line}`);
  const sparkWidth = (text: string) => /requests.*?\/s ([▁▂▃▄▅▆▇█]+)/.exec(text)![1]!.length;
  assert.ok(sparkWidth(narrow) < sparkWidth(wide), `${sparkWidth(narrow)} < ${sparkWidth(wide)}`);
});

test('sparklines scale to their maximum and bars to their fraction', () => {
  assert.equal(sparkline([0, 1, 2, 4, 8], 10), '▁▂▃▅█');
  assert.equal(sparkline([0, 0, 0], 10), '▁▁▁');
  assert.equal(sparkline([1, 2, 3, 4], 2), '▆█');
  assert.equal(bar(0.5, 10), '█████░░░░░');
  assert.equal(bar(1.7, 4), '████');
});

test('the plain line is key=value pairs with the same figures, one per GPU', () => {
  const line = plainLine(busy(), NOW);
  const pairs = Object.fromEntries(line.split(' ').map((p) => p.split('=') as [string, string]));
  assert.equal(pairs.time, '2026-11-29T06:00:00.000Z');
  assert.equal(pairs.daemon, 'up');
  assert.equal(pairs.rps, '12.500');
  assert.equal(pairs.p95_ms, '340', 'whole milliseconds are written without decimals');
  assert.equal(pairs.gpu0_vram_used_bytes, String(18 * GiB));
  assert.equal(pairs.gpu0_util, '0.87');
  assert.equal(pairs.model, 'Qwen/Qwen2.5-14B-Instruct-AWQ');
  assert.equal(plainLine(initialState('http://x', 1000), NOW).includes('rps=-'), true);
});

test('with replicas the dashboard shows every engine on its own line, a down one in words', () => {
  const text = frame(
    busy({
      engines: [
        { upstream: 'http://127.0.0.1:8000', up: true, running: 2, waiting: 0, kvCache: 0.5 },
        { upstream: 'http://127.0.0.1:8001', up: false, running: null, waiting: null, kvCache: null },
      ],
    }),
  );
  assert.match(text, /engine\s+127\.0\.0\.1:8000 up {2}running 2 {2}waiting 0 {2}KV cache .* 50%/);
  assert.match(text, /engine\s+127\.0\.0\.1:8001 down {2}running - {2}waiting - {2}KV cache -/);
});

test('tenants get a line each: requests, tokens, quota 429s and a token quota used today; one implicit tenant gets none', () => {
  const tenants = [
    { tenant: 'shop-a', requestsPerSecond: 9.5, tokensPerSecond: 250, refused: 0, tokensToday: null, tokensPerDay: null },
    { tenant: 'shop-b', requestsPerSecond: 3, tokensPerSecond: 90, refused: 4, tokensToday: 1_234_567, tokensPerDay: 2_000_000 },
  ];
  const text = frame(busy({ tenants }));
  assert.match(text, /tenant\s+shop-a\s+9\.5 req\/s\s+250 tokens\/s {2}quota 429s 0/);
  assert.match(text, /tenant\s+shop-b\s+3\.0 req\/s\s+90\.0 tokens\/s {2}quota 429s 4 {2}tokens today 1\.2M\/2\.0M/);
  const pairs = Object.fromEntries(
    plainLine(busy({ tenants }), NOW)
      .split(' ')
      .map((p) => p.split('=') as [string, string]),
  );
  assert.equal(pairs['tenant_shop-b_quota_429s'], '4');
  assert.equal(pairs['tenant_shop-b_tokens_today'], '1234567');
  assert.equal(pairs['tenant_shop-a_tokens_today'], undefined);
  const alone = [{ tenant: 'default', requestsPerSecond: 1, tokensPerSecond: 1, refused: 0, tokensToday: null, tokensPerDay: null }];
  assert.doesNotMatch(frame(busy({ tenants: alone })), /tenant\s+default/);
});
