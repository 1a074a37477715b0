#!/usr/bin/env node
/*
 * `npm run bench` (after `npm run build`): the daemon's own cost, side by side with what it is held to (#21).
 * The simulator (zero delay, the fast mock engine), a bare relay (src/bench/relay.ts) and the daemon (default
 * configuration: audit log, metrics, redaction on) run as separate processes, the load generator in this
 * one, all on the same cores:
 *
 *   direct     load generator -> simulator
 *   relay      load generator -> bare relay -> simulator
 *   stateless  load generator -> daemon (no X-Session-Id) -> simulator
 *   session    load generator -> daemon (X-Session-Id: window load + turn append in SQLite, sessions of 10
 *              turns, the database seeded with --sessions sessions of 10 turns) -> simulator
 *
 * Non-streaming chat completions at 1 connection (added latency) and 50 (req/s); streams/s with 50 concurrent
 * streams (and one stream compared byte for byte with the engine's); the daemon's RSS idle (20 s after its first
 * answer), after a minute of
 * session load at 50 connections, and its peak. The paths compared take turns in --rounds slices (5). Flags:
 * --duration <s> (per measurement, default 5),
 * --warmup <s> (1), --load-seconds <s> (the session load before "RSS after load", 60), --sessions <n> (seeded,
 * 100000), --store-sessions <n> (the store alone, 100000; 0 skips it), --quick (1 s each, 2,000 sessions, no
 * store bench: to check it works), --out <dir> (bench-results), --only redaction, --only postgres (the
 * PostgreSQL comparison alone), --postgres-url <url> (session
 * turns on PostgreSQL in that database instead of a throwaway cluster). Results go to
 * <dir>/bench-<time>.json and the table to stdout.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { percentile } from '../metrics/quantile.js';
import { BENCH_USAGE, parseBenchArgs, type BenchArgs } from './args.js';
import { runLoad } from './load.js';
import { benchRedaction, type RedactionBenchResult } from './redaction.js';
import { postgresForBench } from './postgres.js';
import { cpuMs, rssMiB } from './proc.js';
import { benchStore, seedPostgres, seedStore, type StoreBenchResult } from './store.js';
import { speedTable, type Measured, type SpeedFigures } from './table.js';

// The child processes run role.js, which loads only what its role needs (the daemon's RSS is the daemon's).
const ROLE_ENTRY = fileURLToPath(new URL('./role.js', import.meta.url));

const args = (() => {
  try {
    return parseBenchArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`npm run bench: ${(err as Error).message}\n\n${BENCH_USAGE}\n`);
    process.exit(2);
  }
})();
if (args.help) {
  process.stdout.write(`${BENCH_USAGE}\n`);
  process.exit(0);
}

function flag(name: Exclude<keyof BenchArgs, 'quick' | 'help'>, fallback: string): string {
  return args[name] ?? fallback;
}

function startRole(role: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ url: string; child: ChildProcess }> {
  // CS_LLM_BENCH_DAEMON_NODE_OPTIONS="--cpu-prof --cpu-prof-dir=prof": node flags for the daemon's process alone.
  const extra = role === 'daemon' ? (process.env.CS_LLM_BENCH_DAEMON_NODE_OPTIONS ?? '').split(' ').filter(Boolean) : [];
  const child = spawn(process.execPath, [...process.execArgv, ...extra, ROLE_ENTRY, '--role', role, ...args], {
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

function redactionLines(results: readonly RedactionBenchResult[]): string[] {
  return results.map(
    (r) =>
      `redaction, ${r.kind} messages (${r.bytes} bytes, ${r.valuesPerMessage.toFixed(1)} values each): ` +
      `p50 ${r.p50UsPerKb.toFixed(1)} us / p99 ${r.p99UsPerKb.toFixed(1)} us of CPU per KB`,
  );
}

/** One stream's bytes with the engine's per-request id and timestamp blanked: what must be identical. */
async function streamText(url: string, body: string): Promise<string> {
  const res = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  const text = await res.text();
  return text.replace(/"id":"chatcmpl-[0-9a-f]+"/g, '"id":"-"').replace(/"created":\d+/g, '"created":0');
}

interface PostgresFigures {
  where: string;
  latency: Measured;
  sqlite: Measured;
  throughput: Measured;
}

function postgresLines(postgres: PostgresFigures | null): string[] {
  return postgres
    ? [
        `session turns at 50 connections: SQLite ${postgres.sqlite.requestsPerSecond.toFixed(0)}/s (p50 ${postgres.sqlite.p50Ms.toFixed(2)} ms), ` +
          `PostgreSQL ${postgres.throughput.requestsPerSecond.toFixed(0)}/s (p50 ${postgres.throughput.p50Ms.toFixed(2)} ms) on ${postgres.where}: ` +
          `${(postgres.throughput.requestsPerSecond / postgres.sqlite.requestsPerSecond).toFixed(2)}x (goal >= 0.5x); ` +
          `at 1 connection PostgreSQL p50 ${postgres.latency.p50Ms.toFixed(2)} ms`,
      ]
    : ['session turns on PostgreSQL: skipped (no PostgreSQL binaries; --postgres-url URL to use a database of yours)'];
}

const loadLine = () =>
  `load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;

const TURNS_PER_SESSION = 10;

async function main(): Promise<void> {
  const quick = args.quick;
  const rounds = Math.max(1, Number(flag('rounds', quick ? '2' : '5')));
  const durationMs = Number(flag('duration', quick ? '1' : '5')) * 1000;
  const warmupMs = Number(flag('warmup', quick ? '0.3' : '1')) * 1000;
  const loadMs = Math.max(durationMs, Number(flag('load-seconds', quick ? '3' : '60')) * 1000);
  const seeded = Number(flag('sessions', quick ? '2000' : '100000'));
  const settleMs = quick ? 2000 : 20_000;
  const outDir = flag('out', 'bench-results');
  const storeSessions = Number(flag('store-sessions', quick ? '0' : '100000'));
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
    // The daemon's database holds `seeded` sessions of 10 turns before it starts (the session path's window
    // loads and appends then work on a database of that size).
    process.stderr.write(`seeding the daemon's database with ${seeded} sessions of ${TURNS_PER_SESSION} turns...\n`);
    const db = join(home, 'bench.db');
    await (await seedStore(db, seeded, TURNS_PER_SESSION)).close();

    const sim = await startRole('sim', [], env);
    children.push(sim.child);
    const relay = await startRole('relay', ['--upstream', sim.url], env);
    children.push(relay.child);
    const daemon = await startRole('daemon', ['--upstream', sim.url, '--db', db], env);
    children.push(daemon.child);
    const pid = daemon.child.pid;
    // Idle: started, the database open, one request served (what a daemon that has answered once holds).
    await streamText(daemon.url, JSON.stringify({ model: 'cs-llm-sim', max_tokens: 4, messages: [{ role: 'user', content: 'hi' }] }));
    await new Promise((resolve) => setTimeout(resolve, 500));
    const rssIdle = rssMiB(pid);
    // Half a second after its first answer the daemon still holds its start's garbage (module compilation, the
    // migrations, the retention pass) and its checkpoint thread, which stops after ten quiet seconds; an idle
    // daemon on an operator's box is the one that has sat for a while. Both readings are printed.
    await new Promise((resolve) => setTimeout(resolve, settleMs));
    const rssSettled = rssMiB(pid);

    const message = { role: 'user', content: 'Hello, where is my parcel?' };
    const body = JSON.stringify({ model: 'cs-llm-sim', max_tokens: 16, messages: [message] });
    const streamBody = JSON.stringify({ model: 'cs-llm-sim', max_tokens: 16, stream: true, messages: [message] });
    let phase = 0;
    interface Path {
      name: string;
      url: string;
      session?: boolean;
      stream?: boolean;
    }
    // The paths of one comparison take turns in short slices (--rounds), so that the load other processes put
    // on the machine while it runs falls on all of them alike: measured one after the other, a path that ran
    // while the machine was busier came out slower than the one it is compared with.
    const compare = async <K extends string>(
      concurrency: number,
      paths: Record<K, Path>,
      ms = durationMs,
    ): Promise<Record<K, Measured>> => {
      const entries = Object.entries(paths) as Array<[K, Path]>;
      const state = entries.map(([, path]) => {
        phase++;
        const turns = new Map<number, number>();
        const id = phase;
        const request = (w: number): { body: string; headers: Record<string, string> } => {
          if (!path.session) return { body: path.stream ? streamBody : body, headers: {} };
          // Each worker holds sessions of 10 turns: turn k of its session n, then a new session.
          const k = turns.get(w) ?? 0;
          turns.set(w, k + 1);
          return { body, headers: { 'x-session-id': `bench-${id}-${w}-${Math.floor(k / TURNS_PER_SESSION)}` } };
        };
        return { request, latencies: [] as number[], overheads: [] as number[], requests: 0, errors: 0, elapsedMs: 0, cpuMs: 0, sent: 0 };
      });
      for (let round = 0; round < rounds; round++) {
        for (const [i, [, path]] of entries.entries()) {
          const s = state[i]!;
          const warm = round === 0 ? warmupMs : Math.min(warmupMs, 200);
          const cpuBefore = cpuMs(pid);
          const r = await runLoad({
            url: path.url,
            path: '/v1/chat/completions',
            concurrency,
            durationMs: ms / rounds,
            warmupMs: warm,
            request: s.request,
          });
          const cpuAfter = cpuMs(pid);
          s.latencies.push(...r.latencies);
          if (r.reportedOverheadP50Ms !== null) s.overheads.push(r.reportedOverheadP50Ms);
          s.requests += r.requests;
          s.errors += r.errors;
          s.elapsedMs += r.elapsedMs;
          // Warm-up requests are not counted: CPU per request is over the slice's requests, estimated.
          if (cpuBefore !== null && cpuAfter !== null) {
            s.cpuMs += cpuAfter - cpuBefore;
            s.sent += r.requests * ((ms / rounds + warm) / (ms / rounds));
          }
        }
      }
      const out = {} as Record<K, Measured>;
      for (const [i, [key, path]] of entries.entries()) {
        const s = state[i]!;
        const latencies = s.latencies.sort((a, b) => a - b);
        const m: Measured = {
          name: path.name,
          concurrency,
          requests: s.requests,
          errors: s.errors,
          requestsPerSecond: s.requests / (s.elapsedMs / 1000),
          p50Ms: percentile(latencies, 50),
          p99Ms: percentile(latencies, 99),
          meanMs: latencies.reduce((a, b) => a + b, 0) / Math.max(1, latencies.length),
          reportedOverheadP50Ms:
            s.overheads.length > 0
              ? percentile(
                  s.overheads.sort((a, b) => a - b),
                  50,
                )
              : null,
          latencies: [],
          elapsedMs: s.elapsedMs,
          daemonCpuUs: path.url === daemon.url && s.sent > 0 ? (s.cpuMs * 1000) / s.sent : null,
        };
        process.stderr.write(`measured ${m.name} at c=${concurrency}: ${m.requestsPerSecond.toFixed(0)}/s, p50 ${m.p50Ms.toFixed(3)} ms\n`);
        out[key] = m;
      }
      return out;
    };

    // Session turns on PostgreSQL over loopback (#20): a second daemon on a PostgreSQL store seeded alike, and
    // the SQLite daemon again for the same time, so the two figures are taken side by side. Skipped without
    // the PostgreSQL binaries (--postgres-url: a database of yours instead of a throwaway cluster).
    const onPostgres = async () => {
      process.stderr.write(`seeding a PostgreSQL store with ${seeded} sessions of ${TURNS_PER_SESSION} turns...\n`);
      const pgStore = await postgresForBench(flag('postgres-url', ''), (url) => seedPostgres(url, seeded, TURNS_PER_SESSION));
      if (!pgStore) return null;
      try {
        const pgDaemon = await startRole('daemon', ['--upstream', sim.url, '--db', pgStore.url], env);
        children.push(pgDaemon.child);
        const onPostgres: Path = { name: 'session on PostgreSQL', url: pgDaemon.url, session: true };
        const onSqlite: Path = { name: 'session on SQLite', url: daemon.url, session: true };
        // Both warm before they are compared, 5 s each at 50 connections (figures not kept): the PostgreSQL
        // daemon has just started, while in a full run the SQLite one has served the whole bench. Cold, its
        // first seconds ran at half its later rate (node's JIT, the pool's connections and their plans in
        // PostgreSQL), which under --quick (2 s a path) put the full run's ratio at 0.40x against 0.66x alone.
        const warm = { postgres: { ...onPostgres, name: 'warm-up on PostgreSQL' }, sqlite: { ...onSqlite, name: 'warm-up on SQLite' } };
        await compare(50, warm, Math.max(5000, durationMs));
        const latencyPg = await compare(1, { postgres: onPostgres });
        const side = await compare(50, { postgres: onPostgres, sqlite: onSqlite });
        pgDaemon.child.kill('SIGTERM');
        return { where: pgStore.where, latency: latencyPg.postgres, throughput: side.postgres, sqlite: side.sqlite };
      } finally {
        await pgStore.remove();
      }
    };
    if (flag('only', '') === 'postgres') {
      const figures = await onPostgres();
      process.stdout.write(`${postgresLines(figures).join('\n')}\n${loadLine()}\n`);
      return;
    }

    const direct: Path = { name: 'direct', url: sim.url };
    const bare: Path = { name: 'relay', url: relay.url };
    const stateless: Path = { name: 'stateless', url: daemon.url };
    const session: Path = { name: 'session', url: daemon.url, session: true };
    const latency = await compare(1, { direct, relay: bare, stateless, session });
    const throughput = await compare(50, { direct, relay: bare, stateless, session });
    // A minute of session load (--load-seconds): "RSS after load" is read right after it.
    const minute = await compare(50, { session: { ...session, name: 'session (the minute)' } }, loadMs);
    const rssAfterLoad = rssMiB(pid);

    const [directStream, relayStream, daemonStream] = await Promise.all(
      [sim.url, relay.url, daemon.url].map((u) => streamText(u, streamBody)),
    );
    const streams = await compare(50, {
      direct: { name: 'SSE direct', url: sim.url, stream: true },
      relay: { name: 'SSE relay', url: relay.url, stream: true },
      daemon: { name: 'SSE stateless', url: daemon.url, stream: true },
    });
    const rssEnd = rssMiB(pid);

    const postgres = await onPostgres();

    const figures: SpeedFigures = {
      latency,
      throughput,
      minute: minute.session,
      streams,
      streamIdentical: daemonStream === directStream,
      relayStreamIdentical: relayStream === directStream,
      rss: {
        idle: rssIdle?.now ?? null,
        afterLoad: rssAfterLoad?.now ?? null,
        peak: rssEnd?.peak ?? null,
        idleAnon: rssIdle?.anon ?? null,
        settled: rssSettled?.now ?? null,
        settledAnon: rssSettled?.anon ?? null,
        settleSeconds: settleMs / 1000,
        afterLoadAnon: rssAfterLoad?.anon ?? null,
        loadSeconds: loadMs / 1000,
      },
    };

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
      loadAverage: loadavg(),
      durationMs,
      warmupMs,
      seededSessions: seeded,
      request:
        'POST /v1/chat/completions, max_tokens 16, one user message; session: X-Session-Id, each worker its own sessions of 10 turns; SSE: the same with stream: true',
      ...figures,
      store,
      postgres,
      redaction,
    };
    mkdirSync(outDir, { recursive: true });
    const file = join(outDir, `bench-${result.date.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);

    const storeLines = store.map(
      (st) =>
        `store, ${st.sessions} sessions (${st.messages} messages), synchronous=${st.synchronous}: ` +
        `load 8 turns p50 ${st.loadWindow.p50Us.toFixed(1)} us / p99 ${st.loadWindow.p99Us.toFixed(1)} us; ` +
        `append a turn p50 ${st.appendTurn.p50Us.toFixed(1)} us / p99 ${st.appendTurn.p99Us.toFixed(1)} us`,
    );
    const load = loadavg()
      .map((l) => l.toFixed(2))
      .join(' ');
    process.stdout.write(
      `${speedTable(figures)}\n\n${[...postgresLines(postgres), ...storeLines, ...redactionLines(redaction)].map((l) => `${l}\n`).join('')}\n` +
        `${cpus().length} CPU(s) (${result.cpuModel}), ${process.version}, load average at the end ${load}; ${seeded} sessions seeded; results in ${file}\n`,
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
