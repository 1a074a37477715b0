#!/usr/bin/env node
/**
 * `npm run bench:cpu` (after `npm run build` and `npm run setup:cpu`): tokens/s and time to first token of the
 * CPU engine (llama.cpp, tiny-chat) alone and through the chat daemon, at 1 and 4 concurrent streaming chats.
 * The engine and the daemon run as separate processes, the load generator in this one.
 *
 * The target is a daemon costing under 1% of the engine's tokens/s. On two shared vCPUs the engine's speed
 * drifts by more than that within seconds, so the paths are compared in pairs run back to back with the same
 * seeds (same replies): at 1 chat, request by request; at 4 chats, block by block (4 lanes x a few requests).
 * The order inside a pair alternates, and the cost comes with a 95% bootstrap interval over the pairs.
 * Before measuring, the daemon serves a few hundred short requests so V8 has compiled its hot paths, as it
 * would have minutes into a real day.
 *
 * Flags: --pairs <n> (1 chat, default 120), --blocks <n> (4 chats, default 24), --max-tokens <n> (default 200),
 * --threads <n> (engine threads, default 1), --warmup <n> (default 300), --out <dir> (default bench-results),
 * --no-pin (leave the processes unpinned: they then compete for the same CPUs).
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
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

/**
 * CPU sets as `up` deploys them: the engine gets `threads` CPUs (its container's quota, threads = CPUs - 1 by
 * default) and the daemon the rest. Here taskset stands in for the quota; null when it cannot (one CPU, no
 * taskset, or --no-pin).
 */
interface CpuSets {
  engine: string;
  rest: string;
}

function cpuSets(threads: number): CpuSets | null {
  const count = cpus().length;
  if (process.argv.includes('--no-pin') || threads >= count) return null;
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
  } catch {
    return null;
  }
  const range = (from: number, to: number) => (from === to ? String(from) : `${from}-${to}`);
  return { engine: range(0, threads - 1), rest: range(threads, count - 1) };
}

/** Runs node with `args`, on the given CPUs when there are sets. */
function spawnNode(args: string[], cpuList: string | undefined, options: SpawnOptions): ChildProcess {
  const node = [...process.execArgv, ...args];
  return cpuList ? spawn('taskset', ['-c', cpuList, process.execPath, ...node], options) : spawn(process.execPath, node, options);
}

async function startEngine(threads: number, parallel: number, sets: CpuSets | null): Promise<{ url: string; child: ChildProcess }> {
  const main = join(root, ext === 'ts' ? 'src' : 'dist', 'cpu', `main.${ext}`);
  const model = join(root, 'models', 'tiny-chat.gguf');
  const child = spawnNode([main, '--model', model, '--port', '0', '--threads', String(threads), '--parallel', String(parallel), '--max-queue', '64'], sets?.engine, {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await waitForLine(child, (line) => /listening on (http:\/\/\S+)/.exec(line)?.[1] ?? null, 'the cpu engine');
  await waitForLine(child, (line) => (/Application startup complete/.test(line) ? line : null), 'the cpu engine');
  return { url, child };
}

async function startDaemon(upstream: string, home: string, sets: CpuSets | null): Promise<{ url: string; child: ChildProcess }> {
  const child = spawnNode([here, '--role', 'daemon', '--upstream', upstream], sets?.rest, {
    env: { ...process.env, CS_LLM_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await waitForLine(child, (l) => (l.startsWith('{') ? l : null), 'the daemon');
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

interface ChatTiming {
  /** ms from sending the request to the first content byte, to `data: [DONE]`, and to the end of the response. */
  ttftMs: number;
  doneMs: number;
  totalMs: number;
  tokens: number;
}

const CONTENT = Buffer.from('"content":"');
const DONE = Buffer.from('data: [DONE]');

/**
 * One streaming chat over a keep-alive node:http agent (the same cheap client for both paths, so the load
 * generator's own CPU weighs on them alike). Completion tokens come from the usage event.
 */
function streamChat(agent: Agent, baseUrl: string, maxTokens: number, seed: number, ignoreEos: boolean): Promise<ChatTiming> {
  const body = JSON.stringify({
    model: 'tiny-chat',
    messages: [{ role: 'user', content: 'Tell me a story.' }],
    temperature: 0.8,
    seed,
    max_tokens: maxTokens,
    // vLLM's extra field, which the cpu engine takes too: replies of exactly max_tokens.
    ...(ignoreEos ? { ignore_eos: true } : {}),
    stream: true,
    stream_options: { include_usage: true },
  });
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(`${baseUrl}/v1/chat/completions`, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`chat answered ${res.statusCode}`));
        return;
      }
      let ttftMs = -1;
      let doneMs = -1;
      let tail = '';
      res.on('data', (chunk: Buffer) => {
        // The first chunk after the role-only one carries content; a content field with a non-empty string.
        for (let at = ttftMs < 0 ? chunk.indexOf(CONTENT) : -1; at >= 0; at = chunk.indexOf(CONTENT, at + 1)) {
          if (chunk[at + CONTENT.length] === 0x22) continue;
          ttftMs = performance.now() - started;
          break;
        }
        if (doneMs < 0 && chunk.indexOf(DONE) >= 0) doneMs = performance.now() - started;
        tail = (tail + chunk.toString('latin1')).slice(-600);
      });
      res.on('end', () => {
        const totalMs = performance.now() - started;
        const usage = /"completion_tokens":(\d+)/.exec(tail);
        if (!usage || ttftMs < 0 || doneMs < 0) return reject(new Error('the stream ended without content, usage or [DONE]'));
        resolve({ ttftMs, doneMs, totalMs, tokens: Number(usage[1]) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** CPU milliseconds (user + system) a process has used, from /proc (Linux); 0 where it cannot be read. */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command; clock ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

type Path = 'engine' | 'daemon';

/** One side of a pair: one request, or a block of them run by concurrent lanes. */
interface Unit {
  /** Completion tokens, and the wall time from the first request sent to the last response ended. */
  tokens: number;
  ms: number;
  /** Tokens after the first, and the time from the first content to [DONE], summed over the requests. */
  streamTokens: number;
  streamMs: number;
  ttfts: number[];
}

interface Pair {
  engine: Unit;
  daemon: Unit;
}

/** The two rates compared: while a reply streams, and over the whole run (time to first token and gaps included). */
type Rate = 'stream' | 'throughput';

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? 0;
}

function tokensPerSecond(pairs: Pair[], path: Path, rate: Rate): number {
  let tokens = 0;
  let ms = 0;
  for (const p of pairs) {
    tokens += rate === 'stream' ? p[path].streamTokens : p[path].tokens;
    ms += rate === 'stream' ? p[path].streamMs : p[path].ms;
  }
  return (tokens / ms) * 1000;
}

/** Cost of the daemon in % of the engine's tokens/s over a set of pairs: 1 - daemon tok/s / engine tok/s. */
function costPercent(pairs: Pair[], rate: Rate): number {
  return (1 - tokensPerSecond(pairs, 'daemon', rate) / tokensPerSecond(pairs, 'engine', rate)) * 100;
}

/** 95% bootstrap interval of costPercent, resampling whole pairs (a fixed-seed generator: reruns agree). */
function bootstrap(pairs: Pair[], rate: Rate, rounds = 2000): [number, number] {
  let state = 0x9e3779b9;
  const random = () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const costs: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const sample = Array.from({ length: pairs.length }, () => pairs[Math.floor(random() * pairs.length)]!);
    costs.push(costPercent(sample, rate));
  }
  return [percentile(costs, 2.5), percentile(costs, 97.5)];
}

interface RateResult {
  engineTokensPerSecond: number;
  daemonTokensPerSecond: number;
  costPercent: number;
  costInterval95: [number, number];
}

interface Result {
  concurrency: number;
  pairs: number;
  requestsPerPath: number;
  /** Tokens per second while replies stream (first content to [DONE]), summed over the chats' own time. */
  stream: RateResult;
  /** Tokens per second of the whole run: what the box delivers, time to first token and gaps included. */
  throughput: RateResult;
  meanCompletionTokens: number;
  engineTtftP50Ms: number;
  daemonTtftP50Ms: number;
  engineTtftP90Ms: number;
  daemonTtftP90Ms: number;
  /** CPU of the processes while the daemon path ran: what the daemon spends next to what the engine spends. */
  daemonCpuMsPerRequest: number;
  daemonCpuMsPerThousandTokens: number;
  engineCpuMsPerThousandTokens: number;
}

async function lanes(agent: Agent, url: string, concurrency: number, seeds: number[], maxTokens: number, ignoreEos: boolean): Promise<Unit> {
  let next = 0;
  const timings: ChatTiming[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < seeds.length) timings.push(await streamChat(agent, url, maxTokens, seeds[next++]!, ignoreEos));
    }),
  );
  const ms = performance.now() - started;
  return {
    tokens: timings.reduce((n, t) => n + t.tokens, 0),
    ms,
    streamTokens: timings.reduce((n, t) => n + t.tokens - 1, 0),
    streamMs: timings.reduce((n, t) => n + (t.doneMs - t.ttftMs), 0),
    ttfts: timings.map((t) => t.ttftMs),
  };
}

interface Plan {
  concurrency: number;
  /** Pairs, and requests per side of a pair. */
  count: number;
  perBlock: number;
  maxTokens: number;
  ignoreEos: boolean;
  threads: number;
  warmup: number;
  sets: CpuSets | null;
}

async function measure(plan: Plan, home: string, children: ChildProcess[]): Promise<Result> {
  const { concurrency, count, perBlock, maxTokens, ignoreEos, warmup } = plan;
  // One sequence per concurrent chat, so 4 chats are batched by llama.cpp rather than queued.
  const engine = await startEngine(plan.threads, concurrency, plan.sets);
  children.push(engine.child);
  const daemon = await startDaemon(engine.url, home, plan.sets);
  children.push(daemon.child);
  const agents = { engine: new Agent({ keepAlive: true, maxSockets: concurrency }), daemon: new Agent({ keepAlive: true, maxSockets: concurrency }) };
  const urls = { engine: engine.url, daemon: daemon.url };
  try {
    const warmSeeds = Array.from({ length: warmup }, (_, i) => i);
    await lanes(agents.engine, urls.engine, concurrency, warmSeeds.slice(0, Math.ceil(warmup / 10)), 16, false);
    await lanes(agents.daemon, urls.daemon, concurrency, warmSeeds, 16, false);
    const pairs: Pair[] = [];
    let daemonCpu = 0;
    let engineCpuOnDaemonPath = 0;
    for (let i = 0; i < count; i++) {
      const seeds = Array.from({ length: perBlock }, (_, k) => (i * perBlock + k) % 32);
      const order: Path[] = i % 2 === 0 ? ['engine', 'daemon'] : ['daemon', 'engine'];
      const pair = {} as Pair;
      for (const path of order) {
        const before = path === 'daemon' ? { d: cpuMs(daemon.child.pid), e: cpuMs(engine.child.pid) } : null;
        pair[path] = await lanes(agents[path], urls[path], concurrency, seeds, maxTokens, ignoreEos);
        if (before) {
          daemonCpu += cpuMs(daemon.child.pid) - before.d;
          engineCpuOnDaemonPath += cpuMs(engine.child.pid) - before.e;
        }
      }
      pairs.push(pair);
    }
    const ttfts = (path: Path) => pairs.flatMap((p) => p[path].ttfts);
    const daemonTokens = pairs.reduce((n, p) => n + p.daemon.tokens, 0);
    const requestsPerPath = count * perBlock;
    const rate = (r: Rate): RateResult => ({
      engineTokensPerSecond: tokensPerSecond(pairs, 'engine', r),
      daemonTokensPerSecond: tokensPerSecond(pairs, 'daemon', r),
      costPercent: costPercent(pairs, r),
      costInterval95: bootstrap(pairs, r),
    });
    return {
      concurrency,
      pairs: count,
      requestsPerPath,
      stream: rate('stream'),
      throughput: rate('throughput'),
      meanCompletionTokens: daemonTokens / requestsPerPath,
      engineTtftP50Ms: percentile(ttfts('engine'), 50),
      daemonTtftP50Ms: percentile(ttfts('daemon'), 50),
      engineTtftP90Ms: percentile(ttfts('engine'), 90),
      daemonTtftP90Ms: percentile(ttfts('daemon'), 90),
      daemonCpuMsPerRequest: daemonCpu / requestsPerPath,
      daemonCpuMsPerThousandTokens: (daemonCpu * 1000) / Math.max(1, daemonTokens),
      engineCpuMsPerThousandTokens: (engineCpuOnDaemonPath * 1000) / Math.max(1, daemonTokens),
    };
  } finally {
    agents.engine.destroy();
    agents.daemon.destroy();
    for (const child of [daemon.child, engine.child]) child.kill('SIGTERM');
  }
}

const pct = (v: number) => `${v.toFixed(2)}%`;

function rateLine(label: string, r: Result, rate: RateResult): string {
  return [
    label.padEnd(30),
    r.concurrency === 1 ? '1 chat   ' : `${r.concurrency} chats  `,
    rate.engineTokensPerSecond.toFixed(0).padEnd(14),
    rate.daemonTokensPerSecond.toFixed(0).padEnd(14),
    pct(rate.costPercent).padEnd(9),
    `${pct(rate.costInterval95[0])} .. ${pct(rate.costInterval95[1])}`,
  ].join('');
}

async function main(): Promise<void> {
  if (flag('role', '') === 'daemon') return runDaemonRole();
  const pairs = Number(flag('pairs', '120'));
  const blocks = Number(flag('blocks', '24'));
  const maxTokens = Number(flag('max-tokens', '200'));
  const threads = Number(flag('threads', '1'));
  const warmup = Number(flag('warmup', '300'));
  const ignoreEos = !process.argv.includes('--eos');
  const out = flag('out', 'bench-results');
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-bench-cpu-'));
  const children: ChildProcess[] = [];
  const sets = cpuSets(threads);
  // The load generator shares the daemon's CPUs, so the engine's CPUs stay the engine's alone on both paths.
  if (sets) execFileSync('taskset', ['-a', '-p', '-c', sets.rest, String(process.pid)], { stdio: 'ignore' });
  try {
    const base = { maxTokens, ignoreEos, threads, warmup, sets };
    process.stderr.write(`1 chat: ${pairs} pairs of requests...\n`);
    const one = await measure({ ...base, concurrency: 1, count: pairs, perBlock: 1 }, home, children);
    process.stderr.write(`4 chats: ${blocks} pairs of blocks of 4 x 4 requests...\n`);
    const four = await measure({ ...base, concurrency: 4, count: blocks, perBlock: 16 }, home, children);
    const results = [one, four];
    process.stdout.write(
      `cpu engine (tiny-chat, ${threads} thread(s), replies of ${ignoreEos ? `exactly ${maxTokens}` : `up to ${maxTokens}`} tokens, streaming; ${cpus().length} CPUs, ${sets ? `engine on CPU ${sets.engine}, daemon and load generator on CPU ${sets.rest}` : 'not pinned'}; daemon warmed with ${warmup} requests)\n\n`,
    );
    process.stdout.write(`${'TOKENS/S'.padEnd(30)}CHATS    ENGINE        DAEMON        COST     COST 95% CI\n`);
    for (const r of results) process.stdout.write(`${rateLine('while streaming', r, r.stream)}\n`);
    for (const r of results) process.stdout.write(`${rateLine('whole run (TTFT, gaps)', r, r.throughput)}\n`);
    process.stdout.write(`\nCHATS    TOKENS/REPLY  ENGINE TTFT p50/p90  DAEMON TTFT p50/p90  DAEMON CPU/REQUEST  DAEMON CPU / ENGINE CPU\n`);
    for (const r of results) {
      process.stdout.write(
        [
          String(r.concurrency).padEnd(9),
          r.meanCompletionTokens.toFixed(0).padEnd(14),
          `${r.engineTtftP50Ms.toFixed(2)}/${r.engineTtftP90Ms.toFixed(2)} ms`.padEnd(21),
          `${r.daemonTtftP50Ms.toFixed(2)}/${r.daemonTtftP90Ms.toFixed(2)} ms`.padEnd(21),
          `${r.daemonCpuMsPerRequest.toFixed(2)} ms`.padEnd(20),
          pct((r.daemonCpuMsPerThousandTokens / Math.max(1e-9, r.engineCpuMsPerThousandTokens)) * 100),
        ].join('') + '\n',
      );
    }
    const worst = Math.max(...results.map((r) => r.stream.costInterval95[1]));
    process.stdout.write(
      `\n${worst < 1 ? 'target met' : 'target NOT met'}: upper 95% bound of the daemon's cost to the streaming tokens/s ${pct(worst)} (target: under 1%)\n`,
    );
    mkdirSync(out, { recursive: true });
    const file = join(out, `bench-cpu-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify({ threads, maxTokens, ignoreEos, warmup, cpus: cpus().length, cpuSets: sets, results }, null, 2)}\n`);
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
