import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { deepMerge, loadConfig } from '../../../src/core/config.js';
import { startDaemon, type Daemon } from '../../../src/daemon/server.js';
import { startSimulator } from '../../../src/sim/server.js';
import { cli } from '../../daemon/harness.js';
import { entryArgs, ROOT } from '../../helpers/cli.js';
import { kneeSentence } from '../../../src/cli/commands/bench.js';

type After = { after(fn: () => Promise<void> | void): void };

/** A daemon in front of a simulator that generates two replies at a time, a few ms per token. */
async function daemonOverSim(t: After): Promise<{ daemon: Daemon; home: string }> {
  const sim = await startSimulator({ port: 0, maxNumSeqs: 2, ttftMs: 5, tokensPerSecond: 1000, accessLog: false });
  t.after(() => sim.close());
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-bench-'));
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: deepMerge({ daemon: { upstream: sim.url } }) });
  const daemon = await startDaemon({ config, paths, port: 0, metrics: { gpu: false } });
  t.after(() => daemon.close('test over'));
  return { daemon, home };
}

const SHORT = ['--step', '1s', '--start', '4', '--factor', '2', '--reply-tokens', '8', '--prompt-tokens', '8', '--think', '50ms'];

test('bench ramps the arrival rate through the daemon in multi-turn sessions and reports every step and the knee', async (t) => {
  const { daemon, home } = await daemonOverSim(t);
  const run = await cli(['bench', '--url', daemon.url, ...SHORT, '--max-steps', '3', '--refine', '0', '--slo-p95', '30s', '--json'], {
    env: { CS_LLM_HOME: home },
  });
  assert.equal(run.exitCode, 0, run.stderr);
  const result = JSON.parse(run.stdout) as {
    model: string;
    rows: Array<{ rate: number; sent: number; completed: number; e2e: { p95: number } | null; ttft: unknown; ok: boolean }>;
    knee: { rate: number } | null;
    summary: string;
    interrupted: boolean;
  };
  assert.equal(result.model, 'cs-llm-sim');
  assert.deepEqual(
    result.rows.map((r) => r.rate),
    [4, 8, 16],
  );
  for (const r of result.rows) {
    assert.ok(r.completed > 0 && r.e2e !== null && r.ttft !== null, JSON.stringify(r));
  }
  assert.equal(result.interrupted, false);
  assert.ok(result.knee, 'a 30 s SLO holds');
  assert.match(result.summary, /^held the 30\.00s SLO at every rate tried, up to 16 turns\/s offered/);
  // Progress went to stderr as NDJSON, one event per line.
  assert.ok(run.stderr.split('\n').some((l) => l.startsWith('{"kind":"row"')));
  // The customers held sessions in the daemon: several turns each.
  const sessions = await daemon.store.sessions.list({ tenant: null, now: Date.now(), limit: 500 });
  assert.ok(sessions.sessions.length > 0);
  assert.ok(
    sessions.sessions.some((s) => s.turns > 1),
    'some customer asked more than once',
  );
});

test('Ctrl-C ends the step in progress and prints what was measured so far, with its table and chart', async (t) => {
  const { daemon, home } = await daemonOverSim(t);
  const child = execa(process.execPath, [...entryArgs('cli/main'), 'bench', '--url', daemon.url, ...SHORT, '--slo-p95', '30s'], {
    cwd: ROOT,
    env: { CS_LLM_HOME: home, NO_COLOR: '1' },
    reject: false,
  });
  // Once the first step's row is out, interrupt the second.
  await new Promise<void>((resolve) => {
    let seen = '';
    child.stderr!.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (/step 1: 4\/s offered/.test(seen)) resolve();
    });
  });
  child.kill('SIGINT');
  const done = await child;
  assert.equal(done.exitCode, 130, String(done.stderr));
  const out = String(done.stdout);
  assert.match(out, /OFFERED\/S\s+DONE\/S/);
  assert.match(out, /end-to-end latency, seconds/);
  assert.match(out, /\(interrupted: so far\)/);
});

test('bench says what to do when nothing answers at the URL', async () => {
  const run = await cli(['bench', '--url', 'http://127.0.0.1:9', '--step', '1s'], {
    env: { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-bench-')) },
  });
  assert.equal(run.exitCode, 4);
  assert.match(run.stderr, /nothing answers at http:\/\/127\.0\.0\.1:9/);
  assert.match(run.stderr, /cs-llm daemon start/);
  const bad = await cli(['bench', '--slo-p95', 'soon'], { env: { CS_LLM_HOME: mkdtempSync(join(tmpdir(), 'cs-llm-bench-')) } });
  assert.equal(bad.exitCode, 2);
  assert.match(bad.stderr, /--slo-p95 must be a duration/);
});

test('the knee is the highest rate that held, said as an operator quotes it', () => {
  const row = (rate: number, ok: boolean) => ({
    rate,
    seconds: 30,
    sent: 100,
    completed: 100,
    completedPerSecond: rate * 0.99,
    tokensPerSecond: 0,
    ttft: null,
    e2e: { p50: 0.4, p95: ok ? 0.9 : 2.5, p99: 3 },
    errors: 0,
    rateLimited: 0,
    ok,
    why: ok ? null : 'p95 2.50 s is over the SLO',
    partial: false,
    problem: null,
  });
  const result = {
    url: 'u',
    model: 'm',
    interrupted: false,
    rows: [row(100, true), row(200, true), row(300, false)],
    knee: row(200, true),
  };
  assert.equal(kneeSentence(result, 1200), 'sustains 198.0 chats/s (200 offered) at p95 900ms, within the 1.20s SLO');
  assert.match(
    kneeSentence({ ...result, rows: [row(1, false)], knee: null }, 1200),
    /first step \(1 turns\/s\) already broke the 1\.20s SLO/,
  );
});
