import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { sinceDay } from '../../../src/cli/commands/usage.js';
import { resolvePaths } from '../../../src/core/paths.js';
import { openStore } from '../../../src/store/store.js';
import type { UsageRow } from '../../../src/store/usage.js';
import { cli } from '../../daemon/harness.js';

const today = new Date().toISOString().slice(0, 10);
const longAgo = '2020-01-01';

function row(over: Partial<UsageRow>): UsageRow {
  return {
    day: today,
    upstream: 'gpu0',
    model: 'qwen',
    tenant: 'default',
    keyId: '',
    currency: 'CNY',
    requests: 10,
    sessions: 2,
    promptTokens: 1000,
    cachedTokens: 0,
    completionTokens: 200,
    cost: 0.02,
    ...over,
  };
}

async function home(rows: UsageRow[]): Promise<Record<string, string>> {
  const env = { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-usage-cli-')) };
  const store = await openStore({ file: resolvePaths(env).dbFile });
  await store.usage.add(rows);
  await store.close();
  return env;
}

test('usage sums the aggregates by the dimension asked, per currency, with cost per 1k sessions', async () => {
  const env = await home([
    row({}),
    row({ keyId: 'csk_AbCdEfGh', sessions: 3, cost: 0.03 }),
    row({ upstream: 'cloud', currency: 'USD', cost: 0.5, sessions: 0 }),
    row({ day: longAgo, cost: 100 }),
  ]);
  const byUpstream = await cli(['usage', '--json'], { env });
  assert.equal(byUpstream.exitCode, 0, byUpstream.stderr);
  const report = JSON.parse(byUpstream.stdout) as {
    by: string;
    lines: Array<Record<string, unknown>>;
    totals: Array<Record<string, unknown>>;
  };
  assert.equal(report.by, 'upstream');
  assert.deepEqual(
    report.lines.map((l) => [l.group, l.currency, l.cost, l.requests]),
    [
      ['cloud', 'USD', 0.5, 10],
      ['gpu0', 'CNY', 0.05, 20],
    ],
    'the last 7 days only, most expensive first',
  );
  const cny = report.totals.find((l) => l.currency === 'CNY')!;
  assert.equal(cny.sessions, 5);
  assert.ok(Math.abs((cny.costPer1kSessions as number) - 10) < 1e-9);

  const byKey = await cli(['usage', '--by', 'key', '--since', longAgo, '--csv'], { env });
  assert.equal(byKey.exitCode, 0, byKey.stderr);
  const lines = byKey.stdout.trim().split('\n');
  assert.equal(lines[0], 'key,currency,requests,sessions,promptTokens,cachedTokens,completionTokens,cost,costPer1kSessions');
  assert.ok(lines.includes('(no key),CNY,20,4,2000,0,400,100.02,25005'), byKey.stdout);
  assert.ok(lines.some((l) => l.startsWith('csk_AbCdEfGh,CNY,10,3,')));
});

test('usage refuses an unknown dimension and a since that is no duration or date', async () => {
  const env = await home([]);
  const by = await cli(['usage', '--by', 'region'], { env });
  assert.equal(by.exitCode, 2);
  assert.match(by.stderr, /upstream, tenant, key, model, day/);
  const since = await cli(['usage', '--since', 'last week'], { env });
  assert.equal(since.exitCode, 2);
  assert.match(since.stderr, /7d/);
  const none = await cli(['usage'], { env });
  assert.equal(none.exitCode, 0, none.stderr);
  assert.match(none.stdout, /no usage recorded/);
});

test('--since takes a duration back from now or a UTC date', () => {
  const now = Date.parse('2026-03-10T12:00:00Z');
  assert.equal(sinceDay('7d', now), '2026-03-03');
  assert.equal(sinceDay('2026-01-31', now), '2026-01-31');
});
