#!/usr/bin/env node
/**
 * `npm run bench` (after `npm run build`): the daemon's own cost per request. The simulator (zero delay) and
 * the daemon run as separate processes, the load generator in this one; each path is measured at
 * concurrency 1 and at saturation, and compared with going straight to the simulator:
 *
 *   straight   load generator -> simulator
 *   stateless  load generator -> daemon (no X-Session-Id) -> simulator
 *   session    load generator -> daemon (X-Session-Id: history load + append in SQLite) -> simulator
 *
 * Flags: --duration <s> (per measurement, default 5), --warmup <s> (default 1), --concurrency 1,32,
 * --out <dir> (default bench-results). Results go to <dir>/bench-<time>.json and a table on stdout.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runLoad, type LoadResult } from './load.js';

const here = fileURLToPath(import.meta.url);

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** Child roles: print {"url"} on stdout once listening, stop on SIGTERM. */
async function runRole(role: string): Promise<void> {
  let close: () => Promise<void>;
  if (role === 'sim') {
    const { startSimulator } = await import('../sim/server.js');
    const sim = await startSimulator({ port: 0, ttftMs: 0, tokensPerSecond: 0, accessLog: false });
    process.stdout.write(`${JSON.stringify({ url: sim.url })}\n`);
    close = () => sim.close();
  } else {
    const { loadConfig } = await import('../core/config.js');
    const { startDaemon } = await import('./../daemon/server.js');
    const { config, paths } = loadConfig({ flags: { daemon: { upstream: flag('upstream', '') } } });
    const daemon = await startDaemon({ config, paths, port: 0 });
    process.stdout.write(`${JSON.stringify({ url: daemon.url })}\n`);
    close = () => daemon.close('bench over');
  }
  await new Promise<void>((resolve) => process.once('SIGTERM', () => void close().then(resolve)));
}

function startRole(role: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, here, '--role', role, ...args], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.once('line', (line) => {
      try {
        resolve({ url: (JSON.parse(line) as { url: string }).url, child });
      } catch {
        reject(new Error(`${role} printed ${line}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`${role} exited with ${code} before it listened`)));
  });
}

interface Row extends LoadResult {
  path: 'straight' | 'stateless' | 'session';
  concurrency: number;
}

const fmt = (n: number | null, digits = 3) => (n === null || Number.isNaN(n) ? '-' : n.toFixed(digits));

async function main(): Promise<void> {
  const role = flag('role', '');
  if (role) return runRole(role);

  const durationMs = Number(flag('duration', '5')) * 1000;
  const warmupMs = Number(flag('warmup', '1')) * 1000;
  const levels = flag('concurrency', '1,32').split(',').map(Number);
  const outDir = flag('out', 'bench-results');
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-bench-'));
  const env = { ...process.env, CS_LLM_HOME: home, DEBUG: '' };
  const children: ChildProcess[] = [];
  try {
    const sim = await startRole('sim', [], env);
    children.push(sim.child);
    const daemon = await startRole('daemon', ['--upstream', sim.url], env);
    children.push(daemon.child);

    const body = JSON.stringify({ model: 'cs-llm-sim', max_tokens: 16, messages: [{ role: 'user', content: 'Hello, where is my parcel?' }] });
    const rows: Row[] = [];
    let run = 0;
    for (const concurrency of levels) {
      for (const path of ['straight', 'stateless', 'session'] as const) {
        run++;
        const url = path === 'straight' ? sim.url : daemon.url;
        const result = await runLoad({
          url,
          path: '/v1/chat/completions',
          concurrency,
          durationMs,
          warmupMs,
          request: (w): { body: string; headers: Record<string, string> } => ({ body, headers: path === 'session' ? { 'x-session-id': `bench-${run}-${w}` } : {} }),
        });
        rows.push({ path, concurrency, ...result });
        process.stderr.write(`measured ${path} at c=${concurrency}: ${result.requestsPerSecond.toFixed(0)} req/s\n`);
      }
    }

    const straight = (c: number) => rows.find((r) => r.path === 'straight' && r.concurrency === c)!;
    const table = rows.map((r) => {
      const base = straight(r.concurrency);
      return {
        ...r,
        ratioToStraight: r.requestsPerSecond / base.requestsPerSecond,
        addedP50Ms: r.p50Ms - base.p50Ms,
      };
    });
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      durationMs,
      warmupMs,
      request: 'POST /v1/chat/completions, non-streaming, max_tokens 16, one user message (session: each worker its own session, window 10 turns)',
      rows: table,
    };
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `bench-${result.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

    const header = ['path', 'c', 'req/s', 'p50 ms', 'p99 ms', 'added p50 ms', 'x straight', 'daemon self p50 ms', 'errors'];
    const lines = table.map((r) => [
      r.path,
      String(r.concurrency),
      r.requestsPerSecond.toFixed(0),
      fmt(r.p50Ms),
      fmt(r.p99Ms),
      r.path === 'straight' ? '-' : fmt(r.addedP50Ms),
      r.ratioToStraight.toFixed(2),
      fmt(r.reportedOverheadP50Ms),
      String(r.errors),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const out = [header, ...lines].map((l) => l.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
    process.stdout.write(`${out}\n\n${cpus().length} CPU(s), ${process.version}; results in ${file}\n`);
  } finally {
    for (const child of children) child.kill('SIGTERM');
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
