#!/usr/bin/env node
/*
 * `npm run bench` (after `npm run build`): the daemon's own cost per request. The simulator (zero delay) and
 * the daemon run as separate processes, the load generator in this one; each path is measured at
 * concurrency 1 and at saturation, and compared with going straight to the simulator:
 *
 *   straight   load generator -> simulator
 *   stateless  load generator -> daemon (no X-Session-Id) -> simulator
 *   session    load generator -> daemon (X-Session-Id: history load + append in SQLite) -> simulator
 *   responses  load generator -> daemon (POST /v1/responses chained by previous_response_id: the same turn
 *              in the Responses shape, translated to a chat completion) -> simulator
 *
 * Flags: --duration <s> (per measurement, default 5), --warmup <s> (default 1), --concurrency 1,32,
 * --store-sessions <n> (sessions in the store-only measurement, default 100000; 0 skips it),
 * --out <dir> (default bench-results), --only redaction (just the redaction cost, in this process).
 * Results go to <dir>/bench-<time>.json and a table on stdout.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { runLoad, type LoadResult } from './load.js';
import { benchRedaction, type RedactionBenchResult } from './redaction.js';
import { benchStore, type StoreBenchResult } from './store.js';

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
  const child = spawn(process.execPath, [...process.execArgv, here, '--role', role, ...args], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
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

type PathName = 'straight' | 'straight+history' | 'stateless' | 'session' | 'responses';

interface Row extends LoadResult {
  path: PathName;
  concurrency: number;
  /** CPU the daemon process used per request (µs); null for straight paths. */
  daemonCpuUsPerRequest: number | null;
  simCpuUsPerRequest: number | null;
}

/** CPU time (user + system) a process has used so far, in ms, from /proc (Linux); null elsewhere. */
function cpuMs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the file, 12 and 13 after the command name; in clock ticks (100/s).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/** A conversation shaped like a session's window: the system prompt, 10 earlier turns, the new message. */
function historyBody(): string {
  const messages: Array<{ role: string; content: string }> = [{ role: 'system', content: 'You are a helpful customer service assistant.' }];
  for (let i = 1; i <= 10; i++) {
    messages.push({ role: 'user', content: 'Hello, where is my parcel?' });
    messages.push({ role: 'assistant', content: `Turn ${i}. You said: "Hello, where is my parcel?". I am the cs-llm simulator and I see` });
  }
  messages.push({ role: 'user', content: 'Hello, where is my parcel?' });
  return JSON.stringify({ model: 'cs-llm-sim', max_tokens: 16, messages });
}

function redactionLines(results: readonly RedactionBenchResult[]): string[] {
  return results.map(
    (r) =>
      `redaction, ${r.kind} messages (${r.bytes} bytes, ${r.valuesPerMessage.toFixed(1)} values each): ` +
      `p50 ${r.p50UsPerKb.toFixed(1)} us / p99 ${r.p99UsPerKb.toFixed(1)} us of CPU per KB`,
  );
}

const fmt = (n: number | null, digits = 3) => (n === null || Number.isNaN(n) ? '-' : n.toFixed(digits));

async function main(): Promise<void> {
  const role = flag('role', '');
  if (role) return runRole(role);

  const durationMs = Number(flag('duration', '5')) * 1000;
  const warmupMs = Number(flag('warmup', '1')) * 1000;
  const levels = flag('concurrency', '1,32').split(',').map(Number);
  const outDir = flag('out', 'bench-results');
  const storeSessions = Number(flag('store-sessions', '100000'));
  // Measured first, before the load has warmed anything else in this process.
  process.stderr.write('measuring redaction...\n');
  const redaction = benchRedaction();
  if (flag('only', '') === 'redaction') {
    process.stdout.write(`${redactionLines(redaction).join('\n')}\n${cpus().length} CPU(s), ${process.version}\n`);
    return;
  }
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-bench-'));
  const env = { ...process.env, CS_LLM_HOME: home, DEBUG: '' };
  const children: ChildProcess[] = [];
  try {
    const sim = await startRole('sim', [], env);
    children.push(sim.child);
    const daemon = await startRole('daemon', ['--upstream', sim.url], env);
    children.push(daemon.child);

    const body = JSON.stringify({
      model: 'cs-llm-sim',
      max_tokens: 16,
      messages: [{ role: 'user', content: 'Hello, where is my parcel?' }],
    });
    const withHistory = historyBody();
    // Each worker's chain: its next response continues its last (none before the first).
    const previous = new Map<number, string>();
    const responsesBody = (w: number) =>
      JSON.stringify({
        model: 'cs-llm-sim',
        max_output_tokens: 16,
        input: 'Hello, where is my parcel?',
        previous_response_id: previous.get(w) ?? null,
      });
    const rows: Row[] = [];
    let run = 0;
    for (const concurrency of levels) {
      for (const path of ['straight', 'straight+history', 'stateless', 'session', 'responses'] as const) {
        run++;
        const url = path.startsWith('straight') ? sim.url : daemon.url;
        const requestBody = path === 'straight+history' ? withHistory : body;
        const cpuBefore = [cpuMs(daemon.child.pid), cpuMs(sim.child.pid)];
        previous.clear();
        const result = await runLoad({
          url,
          path: path === 'responses' ? '/v1/responses' : '/v1/chat/completions',
          concurrency,
          durationMs,
          warmupMs,
          request: (w): { body: string; headers: Record<string, string> } => ({
            body: path === 'responses' ? responsesBody(w) : requestBody,
            headers: path === 'session' ? { 'x-session-id': `bench-${run}-${w}` } : {},
          }),
          ...(path === 'responses'
            ? { onReply: (w: number, text: string) => void previous.set(w, (JSON.parse(text) as { id: string }).id) }
            : {}),
        });
        const cpuAfter = [cpuMs(daemon.child.pid), cpuMs(sim.child.pid)];
        // Warm-up requests are not counted, so CPU per request is over the whole phase's requests, estimated.
        const total = result.requests * ((durationMs + warmupMs) / durationMs);
        const perRequest = (i: number) =>
          cpuBefore[i] === null || cpuAfter[i] === null || total === 0 ? null : ((cpuAfter[i]! - cpuBefore[i]!) * 1000) / total;
        rows.push({
          path,
          concurrency,
          ...result,
          daemonCpuUsPerRequest: path.startsWith('straight') ? null : perRequest(0),
          simCpuUsPerRequest: perRequest(1),
        });
        process.stderr.write(`measured ${path} at c=${concurrency}: ${result.requestsPerSecond.toFixed(0)} req/s\n`);
      }
    }

    // The session path sends the engine a longer prompt (the window); its fair baseline is straight+history.
    const baseline = (r: Row) =>
      rows.find(
        (b) =>
          b.concurrency === r.concurrency &&
          b.path === (r.path === 'session' || r.path === 'responses' || r.path === 'straight+history' ? 'straight+history' : 'straight'),
      )!;
    const table = rows.map((r) => {
      const base = baseline(r);
      return {
        ...r,
        baseline: base.path,
        ratioToBaseline: r.requestsPerSecond / base.requestsPerSecond,
        addedP50Ms: r.p50Ms - base.p50Ms,
      };
    });
    // What the Responses shape adds over the same turn asked as a chat completion with X-Session-Id.
    const responsesOverSession = levels.map((concurrency) => {
      const at = (path: PathName) => rows.find((r) => r.concurrency === concurrency && r.path === path)!;
      const [session, responses] = [at('session'), at('responses')];
      const self = (r: Row) => r.reportedOverheadP50Ms;
      return {
        concurrency,
        addedP50Ms: responses.p50Ms - session.p50Ms,
        addedSelfP50Ms: self(responses) === null || self(session) === null ? null : self(responses)! - self(session)!,
      };
    });
    const store: StoreBenchResult[] = [];
    if (storeSessions > 0) {
      process.stderr.write(`filling a store with ${storeSessions} sessions of 4 turns...\n`);
      store.push(await benchStore(storeSessions, 'NORMAL'), await benchStore(Math.min(storeSessions, 10_000), 'FULL'));
    }
    const result = {
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model ?? 'unknown',
      durationMs,
      warmupMs,
      request:
        'POST /v1/chat/completions, non-streaming, max_tokens 16, one user message (session: each worker its own session, window 10 turns; straight+history: the same-size prompt sent straight; responses: POST /v1/responses, max_output_tokens 16, each worker its own chain)',
      rows: table,
      responsesOverSession,
      store,
      redaction,
    };
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `bench-${result.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

    const header = [
      'path',
      'c',
      'req/s',
      'p50 ms',
      'p99 ms',
      'vs',
      'added p50 ms',
      'x rps',
      'daemon self p50 ms',
      'daemon CPU us/req',
      'errors',
    ];
    const lines = table.map((r) => [
      r.path,
      String(r.concurrency),
      r.requestsPerSecond.toFixed(0),
      fmt(r.p50Ms),
      fmt(r.p99Ms),
      r.path.startsWith('straight') ? '-' : r.baseline,
      r.path.startsWith('straight') ? '-' : fmt(r.addedP50Ms),
      r.path.startsWith('straight') ? '-' : r.ratioToBaseline.toFixed(2),
      fmt(r.reportedOverheadP50Ms),
      fmt(r.daemonCpuUsPerRequest, 0),
      String(r.errors),
    ]);
    const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i]!.length)));
    const out = [header, ...lines].map((l) => l.map((c, i) => c.padStart(widths[i]!)).join('  ')).join('\n');
    const storeLines = store.map(
      (st) =>
        `store, ${st.sessions} sessions (${st.messages} messages), synchronous=${st.synchronous}: ` +
        `load 8 turns p50 ${st.loadWindow.p50Us.toFixed(1)} us / p99 ${st.loadWindow.p99Us.toFixed(1)} us; ` +
        `append a turn p50 ${st.appendTurn.p50Us.toFixed(1)} us / p99 ${st.appendTurn.p99Us.toFixed(1)} us`,
    );
    const responsesLines = responsesOverSession.map(
      (d) => `responses over session at c=${d.concurrency}: p50 ${fmt(d.addedP50Ms)} ms, daemon self p50 ${fmt(d.addedSelfP50Ms)} ms`,
    );
    process.stdout.write(
      `${out}\n\n${[...responsesLines, ...storeLines, ...redactionLines(redaction)].map((l) => `${l}\n`).join('')}\n${cpus().length} CPU(s), ${process.version}; results in ${file}\n`,
    );
  } finally {
    for (const child of children) child.kill('SIGTERM');
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).message}\n`);
  process.exitCode = 1;
});
