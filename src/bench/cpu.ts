#!/usr/bin/env node
/*
 * `npm run bench:cpu` (after `npm run build` and `npm run setup:cpu`): tokens/s and time to first token of the
 * CPU engine (llama.cpp, tiny-chat) alone and through the chat daemon, at 1 and 4 concurrent streaming chats.
 * The engine and the daemon run as separate processes, the load generator in this one.
 *
 * A third path is a bare relay: twenty lines of node:http and an undici Pool passing bytes through, no
 * validation, sessions, metrics or audit. It is the floor any proxy process pays on this machine, so the
 * difference between it and the daemon is what the daemon's own work costs.
 *
 * The target is a daemon costing under 1% of the engine's tokens/s. On two shared vCPUs the engine's speed
 * drifts by more than that within seconds, so the paths are compared in rounds run back to back with the same
 * seeds (same replies): at 1 chat, request by request; at 4 chats, block by block (4 lanes x a few requests).
 * The order inside a round rotates, and each cost comes with a 95% bootstrap interval over the rounds.
 * Before measuring, the daemon serves a few hundred short requests so V8 has compiled its hot paths, as it
 * would have minutes into a real day.
 *
 * Flags: --rounds <n> (1 chat, default 120), --blocks <n> (4 chats, default 24), --max-tokens <n> (default 200),
 * --eos (replies end at the model's end of turn instead of exactly max-tokens through vLLM's ignore_eos),
 * --chats <list> (concurrent chats to measure, default 1,4), --load-with-engine (the load generator on the
 * engine's CPUs instead of the proxies'),
 * --threads <n> (engine threads, default 1), --warmup <n> (default 300), --out <dir> (default bench-results),
 * --no-pin (leave the processes unpinned: they then compete for the same CPUs).
 */

import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { percentile } from '../metrics/quantile.js';
import { cpuMs, cpuSets, flag, runDaemonRole, runRelayRole, startEngine, startProxy, type CpuSets } from './cpu-processes.js';
import {
  bootstrap,
  costPercent,
  PATHS,
  table,
  tokensPerSecond,
  verdict,
  type Path,
  type PathResult,
  type Result,
  type Round,
  type Unit,
} from './cpu-rounds.js';

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
    const req = request(
      `${baseUrl}/v1/chat/completions`,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } },
      (res) => {
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
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function lanes(
  agent: Agent,
  url: string,
  concurrency: number,
  seeds: number[],
  maxTokens: number,
  ignoreEos: boolean,
): Promise<Unit> {
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
  /** Rounds, and requests per path in a round. */
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
  const relay = await startProxy('relay', engine.url, home, plan.sets);
  children.push(relay.child);
  const daemon = await startProxy('daemon', engine.url, home, plan.sets);
  children.push(daemon.child);
  const processes = { engine, relay, daemon };
  const agents = Object.fromEntries(PATHS.map((p) => [p, new Agent({ keepAlive: true, maxSockets: concurrency })])) as Record<Path, Agent>;
  try {
    const warmSeeds = Array.from({ length: warmup }, (_, i) => i);
    await lanes(agents.engine, engine.url, concurrency, warmSeeds.slice(0, Math.ceil(warmup / 10)), 16, false);
    for (const proxy of ['relay', 'daemon'] as const) await lanes(agents[proxy], processes[proxy].url, concurrency, warmSeeds, 16, false);
    const rounds: Round[] = [];
    const cpu = { relay: 0, daemon: 0, engineOnProxies: 0 };
    for (let i = 0; i < count; i++) {
      const seeds = Array.from({ length: perBlock }, (_, k) => (i * perBlock + k) % 32);
      // Every order of the three paths in turn, so no path always runs first or right after another.
      const orders: Path[][] = [
        ['engine', 'relay', 'daemon'],
        ['daemon', 'engine', 'relay'],
        ['relay', 'daemon', 'engine'],
        ['daemon', 'relay', 'engine'],
        ['engine', 'daemon', 'relay'],
        ['relay', 'engine', 'daemon'],
      ];
      const round = {} as Round;
      for (const path of orders[i % orders.length]!) {
        const proxy = path === 'engine' ? null : path;
        const before = proxy ? { proxy: cpuMs(processes[proxy].child.pid), engine: cpuMs(engine.child.pid) } : null;
        round[path] = await lanes(agents[path], processes[path].url, concurrency, seeds, maxTokens, ignoreEos);
        if (proxy && before) {
          cpu[proxy] += cpuMs(processes[proxy].child.pid) - before.proxy;
          cpu.engineOnProxies += cpuMs(engine.child.pid) - before.engine;
        }
      }
      rounds.push(round);
    }
    const requestsPerPath = count * perBlock;
    const tokens = (path: Path) => rounds.reduce((n, r) => n + r[path].tokens, 0);
    const engineCpuPerToken = cpu.engineOnProxies / Math.max(1, tokens('relay') + tokens('daemon'));
    const result = (path: Path): PathResult => {
      const ttfts = rounds.flatMap((r) => r[path].ttfts).sort((a, b) => a - b);
      const base: PathResult = {
        streamTokensPerSecond: tokensPerSecond(rounds, path, 'stream'),
        throughputTokensPerSecond: tokensPerSecond(rounds, path, 'throughput'),
        ttftP50Ms: percentile(ttfts, 50),
        ttftP90Ms: percentile(ttfts, 90),
      };
      if (path === 'engine') return base;
      return {
        ...base,
        streamCostPercent: costPercent(rounds, path, 'stream'),
        streamCostInterval95: bootstrap(rounds, path, 'stream'),
        throughputCostPercent: costPercent(rounds, path, 'throughput'),
        throughputCostInterval95: bootstrap(rounds, path, 'throughput'),
        cpuMsPerRequest: cpu[path] / requestsPerPath,
        cpuPerEngineCpuPercent: (cpu[path] / Math.max(1, tokens(path)) / Math.max(1e-9, engineCpuPerToken)) * 100,
      };
    };
    return {
      concurrency,
      rounds: count,
      requestsPerPath,
      meanCompletionTokens: tokens('daemon') / requestsPerPath,
      paths: { engine: result('engine'), relay: result('relay'), daemon: result('daemon') },
    };
  } finally {
    for (const agent of Object.values(agents)) agent.destroy();
    for (const child of [daemon.child, relay.child, engine.child]) child.kill('SIGTERM');
  }
}

async function main(): Promise<void> {
  const role = flag('role', '');
  if (role === 'daemon') return runDaemonRole();
  if (role === 'relay') return runRelayRole();
  const rounds = Number(flag('rounds', '120'));
  const blocks = Number(flag('blocks', '24'));
  const maxTokens = Number(flag('max-tokens', '200'));
  const threads = Number(flag('threads', '1'));
  const warmup = Number(flag('warmup', '300'));
  const ignoreEos = !process.argv.includes('--eos');
  const out = flag('out', 'bench-results');
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-bench-cpu-'));
  const children: ChildProcess[] = [];
  const sets = cpuSets(threads);
  // The load generator shares the proxies' CPUs by default, so the engine's CPUs stay the engine's alone on
  // every path; --load-with-engine puts it on the engine's instead, leaving the proxies a CPU of their own as
  // they have when clients are other machines (the engine then shares its CPU with the same client work on
  // every path).
  const loadWithEngine = process.argv.includes('--load-with-engine');
  if (sets) execFileSync('taskset', ['-a', '-p', '-c', loadWithEngine ? sets.engine : sets.rest, String(process.pid)], { stdio: 'ignore' });
  try {
    const base = { maxTokens, ignoreEos, threads, warmup, sets };
    const results: Result[] = [];
    for (const chats of flag('chats', '1,4').split(',').map(Number)) {
      // One chat: request by request. More: blocks of 4 requests per lane, so each block sees the lanes overlap.
      const perBlock = chats === 1 ? 1 : chats * 4;
      const count = chats === 1 ? rounds : blocks;
      process.stderr.write(`${chats} chat(s): ${count} rounds of ${perBlock} request(s) per path...\n`);
      results.push(await measure({ ...base, concurrency: chats, count, perBlock }, home, children));
    }
    const one = results[0]!;
    process.stdout.write(
      `cpu engine: tiny-chat, ${threads} thread(s), streamed replies of ${ignoreEos ? `exactly ${maxTokens}` : `up to ${maxTokens}`} tokens (mean ${one.meanCompletionTokens.toFixed(0)}); ` +
        `${cpus().length} CPUs, ${sets ? (loadWithEngine ? `engine and load generator on CPU ${sets.engine}, proxies on CPU ${sets.rest}` : `engine on CPU ${sets.engine}, proxies and load generator on CPU ${sets.rest}`) : 'not pinned'}; proxies warmed with ${warmup} requests\n` +
        'STREAM: tokens/s from the first content to [DONE]; RUN: tokens/s of the whole run, time to first token and gaps between requests included\n\n',
    );
    process.stdout.write(`${table(results)}\n`);
    process.stdout.write('\n');
    for (const r of results) process.stdout.write(`${verdict(r)}\n`);
    mkdirSync(out, { recursive: true });
    const file = join(out, `bench-cpu-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ threads, maxTokens, ignoreEos, warmup, cpus: cpus().length, cpuSets: sets, results }, null, 2)}\n`,
    );
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
