#!/usr/bin/env node
/**
 * `npm run bench:cpu` (after `npm run build` and `npm run setup:cpu`): tokens/s and time to first token of
 * the CPU engine (llama.cpp, tiny-chat, 1 thread) alone and through the chat daemon, at 1 and 4
 * concurrent streaming chats. The engine and the daemon run as separate processes, the load generator in
 * this one; the paths alternate for several rounds so drift hits both alike. The daemon should cost
 * under 1% of the engine's tokens/s.
 *
 * Flags: --requests <n> (per measurement, default 24), --rounds <n> (default 3), --max-tokens <n>
 * (default 200), --threads <n> (default 1), --out <dir> (default bench-results).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const ext = here.endsWith('.ts') ? 'ts' : 'js';
const root = join(dirname(here), '..', '..');

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

async function runDaemonRole(): Promise<void> {
  const { loadConfig } = await import('../core/config.js');
  const { startDaemon } = await import('../daemon/server.js');
  const { config, paths } = loadConfig({ flags: { daemon: { upstream: flag('upstream', '') } } });
  const daemon = await startDaemon({ config, paths, port: 0 });
  process.stdout.write(`${JSON.stringify({ url: daemon.url })}\n`);
  await new Promise<void>((resolve) => process.once('SIGTERM', () => void daemon.close('bench over').then(resolve)));
}

function waitForLine(child: ChildProcess, test: (line: string) => string | null, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      const found = test(line);
      if (found !== null) {
        lines.removeAllListeners('line');
        resolve(found);
      }
    });
    child.once('exit', (code) => reject(new Error(`${what} exited with ${code} before it was ready`)));
  });
}

async function startEngine(threads: number, parallel: number): Promise<{ url: string; child: ChildProcess }> {
  const main = join(root, ext === 'ts' ? 'src' : 'dist', 'cpu', `main.${ext}`);
  const model = join(root, 'models', 'tiny-chat.gguf');
  const child = spawn(process.execPath, [...process.execArgv, main, '--model', model, '--port', '0', '--threads', String(threads), '--parallel', String(parallel), '--max-queue', '64'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await waitForLine(child, (line) => /listening on (http:\/\/\S+)/.exec(line)?.[1] ?? null, 'the cpu engine');
  await waitForLine(child, (line) => (/Application startup complete/.test(line) ? line : null), 'the cpu engine');
  return { url, child };
}

async function startDaemon(upstream: string, home: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...process.execArgv, here, '--role', 'daemon', '--upstream', upstream], {
    env: { ...process.env, CS_LLM_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await waitForLine(child, (l) => (l.startsWith('{') ? l : null), 'the daemon');
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

interface ChatTiming {
  ttftMs: number;
  tokens: number;
}

async function streamChat(baseUrl: string, maxTokens: number, i: number): Promise<ChatTiming> {
  const started = performance.now();
  const res = await fetch(`${baseUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // Different seeds: the same long sampled reply each run, not one memorised prefix.
    body: JSON.stringify({ model: 'tiny-chat', messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 0.8, seed: i % 8, max_tokens: maxTokens, stream: true, stream_options: { include_usage: true } }),
  });
  if (res.status !== 200) throw new Error(`chat answered ${res.status}: ${await res.text()}`);
  let ttftMs = -1;
  let tokens = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true });
    let cut: number;
    while ((cut = buffer.indexOf('\n\n')) >= 0) {
      const event = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      if (!event.startsWith('data: ') || event === 'data: [DONE]') continue;
      const data = JSON.parse(event.slice(6)) as { choices: Array<{ delta?: { content?: string } }>; usage?: { completion_tokens: number } };
      if (ttftMs < 0 && data.choices[0]?.delta?.content) ttftMs = performance.now() - started;
      if (data.usage) tokens = data.usage.completion_tokens;
    }
  }
  return { ttftMs, tokens };
}

/** CPU seconds (user + system) a process has used, from /proc (Linux); 0 where it cannot be read. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command; clock ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

interface Measurement {
  path: 'engine' | 'daemon';
  /** CPU seconds the engine and the daemon processes used during the measurement. */
  engineCpuSeconds: number;
  daemonCpuSeconds: number;
  concurrency: number;
  requests: number;
  tokens: number;
  seconds: number;
  tokensPerSecond: number;
  ttftP50Ms: number;
  ttftP90Ms: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

async function measure(path: Measurement['path'], baseUrl: string, concurrency: number, requests: number, maxTokens: number, pids: { engine?: number; daemon?: number } = {}): Promise<Measurement> {
  let next = 0;
  const timings: ChatTiming[] = [];
  const cpuBefore = { engine: cpuSeconds(pids.engine), daemon: cpuSeconds(pids.daemon) };
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < requests) timings.push(await streamChat(baseUrl, maxTokens, next++));
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  const engineCpuSeconds = cpuSeconds(pids.engine) - cpuBefore.engine;
  const daemonCpuSeconds = cpuSeconds(pids.daemon) - cpuBefore.daemon;
  const tokens = timings.reduce((n, t) => n + t.tokens, 0);
  const ttfts = timings.map((t) => t.ttftMs).filter((t) => t >= 0);
  return { path, engineCpuSeconds, daemonCpuSeconds, concurrency, requests, tokens, seconds, tokensPerSecond: tokens / seconds, ttftP50Ms: percentile(ttfts, 50), ttftP90Ms: percentile(ttfts, 90) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

async function main(): Promise<void> {
  if (flag('role', '') === 'daemon') return runDaemonRole();
  const requests = Number(flag('requests', '24'));
  const rounds = Number(flag('rounds', '3'));
  const maxTokens = Number(flag('max-tokens', '200'));
  const threads = Number(flag('threads', '1'));
  const out = flag('out', 'bench-results');
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-bench-cpu-'));
  const children: ChildProcess[] = [];
  try {
    const results: Measurement[] = [];
    for (const concurrency of [1, 4]) {
      // One sequence per concurrent chat, so 4 chats are batched by llama.cpp rather than queued.
      const engine = await startEngine(threads, concurrency);
      children.push(engine.child);
      const daemon = await startDaemon(engine.url, home);
      children.push(daemon.child);
      await measure('engine', engine.url, concurrency, concurrency * 2, maxTokens); // warm-up
      await measure('daemon', daemon.url, concurrency, concurrency * 2, maxTokens);
      for (let round = 0; round < rounds; round++) {
        for (const path of round % 2 === 0 ? (['engine', 'daemon'] as const) : (['daemon', 'engine'] as const)) {
          const m = await measure(path, path === 'engine' ? engine.url : daemon.url, concurrency, requests, maxTokens, { engine: engine.child.pid, daemon: daemon.child.pid });
          results.push(m);
          process.stderr.write(`  c=${concurrency} ${path.padEnd(6)} round ${round + 1}: ${m.tokensPerSecond.toFixed(0)} tokens/s, TTFT p50 ${m.ttftP50Ms.toFixed(1)} ms\n`);
        }
      }
      for (const child of [daemon.child, engine.child]) child.kill('SIGTERM');
    }
    const summary = [1, 4].map((concurrency) => {
      const of = (path: string) => results.filter((r) => r.concurrency === concurrency && r.path === path);
      const engineTps = median(of('engine').map((r) => r.tokensPerSecond));
      const daemonTps = median(of('daemon').map((r) => r.tokensPerSecond));
      const viaDaemon = of('daemon');
      return {
        concurrency,
        /** CPU the daemon spent per CPU second of the engine, when requests went through it: a cost measure that load on the machine does not skew. */
        daemonCpuPerEngineCpuPercent: (viaDaemon.reduce((n, r) => n + r.daemonCpuSeconds, 0) / Math.max(1e-9, viaDaemon.reduce((n, r) => n + r.engineCpuSeconds, 0))) * 100,
        daemonCpuMsPerThousandTokens: (viaDaemon.reduce((n, r) => n + r.daemonCpuSeconds, 0) * 1e6) / Math.max(1, viaDaemon.reduce((n, r) => n + r.tokens, 0)),
        engineTokensPerSecond: engineTps,
        daemonTokensPerSecond: daemonTps,
        daemonCostPercent: ((engineTps - daemonTps) / engineTps) * 100,
        engineTtftP50Ms: median(of('engine').map((r) => r.ttftP50Ms)),
        daemonTtftP50Ms: median(of('daemon').map((r) => r.ttftP50Ms)),
      };
    });
    process.stdout.write(`cpu engine (tiny-chat, ${threads} thread(s), ${maxTokens} max tokens, ${requests} streaming chats x ${rounds} rounds per path; ${cpus().length} CPUs)\n`);
    process.stdout.write('CHATS  ENGINE tok/s  DAEMON tok/s  TOK/S COST  ENGINE TTFT p50  DAEMON TTFT p50  DAEMON CPU / ENGINE CPU  DAEMON CPU per 1k tokens\n');
    for (const s of summary) {
      process.stdout.write(
        `${String(s.concurrency).padEnd(7)}${s.engineTokensPerSecond.toFixed(0).padEnd(14)}${s.daemonTokensPerSecond.toFixed(0).padEnd(14)}${`${s.daemonCostPercent.toFixed(2)}%`.padEnd(12)}${`${s.engineTtftP50Ms.toFixed(1)} ms`.padEnd(17)}${`${s.daemonTtftP50Ms.toFixed(1)} ms`.padEnd(17)}${`${s.daemonCpuPerEngineCpuPercent.toFixed(1)}%`.padEnd(25)}${s.daemonCpuMsPerThousandTokens.toFixed(1)} ms\n`,
      );
    }
    mkdirSync(out, { recursive: true });
    const file = join(out, `bench-cpu-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ threads, maxTokens, requests, rounds, cpus: cpus().length, summary, results }, null, 2)}\n`);
    process.stdout.write(`results: ${file}\n`);
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill('SIGTERM');
    rmSync(home, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${(err as Error).stack ?? String(err)}\n`);
  process.exitCode = 1;
});
