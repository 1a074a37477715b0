/*
 * The processes `npm run bench:cpu` compares (src/bench/cpu.ts): the CPU engine, the chat daemon and a bare
 * relay, each started as its own node process (pinned to CPU sets as `up` deploys them when taskset can),
 * and the CPU time each has used.
 */

import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(import.meta.url);
const ext = here.endsWith('.ts') ? 'ts' : 'js';
const root = join(dirname(here), '..', '..');
/** The bench's entry point, which runs the daemon and relay roles in their own processes. */
const benchEntry = join(dirname(here), `cpu.${ext}`);

export function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

export async function runDaemonRole(): Promise<void> {
  const { loadConfig } = await import('../core/config.js');
  const { startDaemon } = await import('../daemon/server.js');
  const { config, paths } = loadConfig({ flags: { daemon: { upstream: flag('upstream', '') } } });
  const daemon = await startDaemon({ config, paths, port: 0 });
  process.stdout.write(`${JSON.stringify({ url: daemon.url })}\n`);
  await new Promise<void>((resolve) => process.once('SIGTERM', () => void daemon.close('bench over').then(resolve)));
}

/** The bare relay: the least a proxy process can do (forward the body, relay the reply's bytes as they come). */
export async function runRelayRole(): Promise<void> {
  const { createServer } = await import('node:http');
  const { Pool } = await import('undici');
  const pool = new Pool(flag('upstream', ''), { connections: 128, pipelining: 1 });
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (part: Buffer) => parts.push(part));
    req.on('end', () => {
      const body = Buffer.concat(parts);
      pool
        .request({
          path: req.url ?? '/',
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
          body,
        })
        .then((upstream) => {
          res.writeHead(upstream.statusCode, { 'content-type': String(upstream.headers['content-type'] ?? 'application/json') });
          upstream.body.on('data', (chunk: Buffer) => res.write(chunk));
          upstream.body.on('end', () => res.end());
        })
        .catch((err: Error) => res.destroy(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${(server.address() as { port: number }).port}` })}\n`);
  await new Promise<void>((resolve) => process.once('SIGTERM', () => resolve()));
  server.close();
  await pool.close();
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
export interface CpuSets {
  engine: string;
  rest: string;
}

export function cpuSets(threads: number): CpuSets | null {
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

export async function startEngine(threads: number, parallel: number, sets: CpuSets | null): Promise<{ url: string; child: ChildProcess }> {
  const main = join(root, ext === 'ts' ? 'src' : 'dist', 'cpu', `main.${ext}`);
  const model = join(root, 'models', 'tiny-chat.gguf');
  const child = spawnNode(
    [main, '--model', model, '--port', '0', '--threads', String(threads), '--parallel', String(parallel), '--max-queue', '64'],
    sets?.engine,
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const url = await waitForLine(child, (line) => /listening on (http:\/\/\S+)/.exec(line)?.[1] ?? null, 'the cpu engine');
  await waitForLine(child, (line) => (/Application startup complete/.test(line) ? line : null), 'the cpu engine');
  return { url, child };
}

export async function startProxy(
  role: 'daemon' | 'relay',
  upstream: string,
  home: string,
  sets: CpuSets | null,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawnNode([benchEntry, '--role', role, '--upstream', upstream], sets?.rest, {
    env: { ...process.env, CS_LLM_HOME: home },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await waitForLine(child, (l) => (l.startsWith('{') ? l : null), `the ${role}`);
  return { url: (JSON.parse(line) as { url: string }).url, child };
}

/** CPU milliseconds (user + system) a process has used, from /proc (Linux); 0 where it cannot be read. */
export function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8')
      .replace(/^.*\) /, '')
      .split(' ');
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the command; clock ticks of 1/100 s.
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}
