// A throwaway PostgreSQL cluster (initdb in a temporary directory, a loopback port, its socket in that
// directory, no system service): what `npm run bench` measures the PostgreSQL store on, and what the tests
// start once per file (test/helpers/postgres.ts). As root the server runs as the postgres user (initdb
// refuses root), who must own the directory.

import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Where Debian's postgresql package puts the server's binaries; CS_LLM_PG_BIN overrides. */
export function postgresBinDir(): string | null {
  const candidates = [
    process.env.CS_LLM_PG_BIN,
    '/usr/lib/postgresql/17/bin',
    '/usr/lib/postgresql/16/bin',
    '/usr/lib/postgresql/15/bin',
  ].filter((d): d is string => typeof d === 'string' && d.length > 0);
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ThrowawayCluster {
  port: number;
  /** The superuser's URL of a database on it. */
  url(database: string): string;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it and removes its directory. */
  remove(): Promise<void>;
}

export async function startThrowawayCluster(options: { bin: string; settings?: Record<string, string> }): Promise<ThrowawayCluster> {
  const { bin } = options;
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-pg-'));
  const asRoot = userInfo().uid === 0;
  const as = async (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]) : run(join(bin, cmd), args);
  if (asRoot) {
    const uid = Number((await run('id', ['-u', 'postgres'])).stdout.trim());
    const gid = Number((await run('id', ['-g', 'postgres'])).stdout.trim());
    chownSync(dir, uid, gid);
  }
  const data = join(dir, 'data');
  const user = asRoot ? 'postgres' : userInfo().username;
  await as('initdb', ['-D', data, '-A', 'trust', '-U', user, '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  const settings = Object.entries({ listen_addresses: '127.0.0.1', max_connections: '200', ...options.settings })
    .map(([k, v]) => `-c ${k}=${v}`)
    .join(' ');
  const serverOptions = `-p ${port} -k ${dir} ${settings}`;
  const start = () => as('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', serverOptions, '-w', 'start']).then(() => undefined);
  const stop = () => as('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']).then(() => undefined);
  await start();
  let running = true;
  return {
    port,
    url: (database) => `postgres://${user}@127.0.0.1:${port}/${database}`,
    async stop() {
      await stop();
      running = false;
    },
    async start() {
      await start();
      running = true;
    },
    async remove() {
      if (running) await stop().catch(() => undefined);
      running = false;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The PostgreSQL store the bench's second daemon uses: `url` (a database of yours, which gets the seeded
 * sessions) or, without it, a throwaway cluster on this machine with PostgreSQL's default settings (fsync
 * and synchronous_commit on: every acknowledged turn is on disk). Null when neither is available.
 */
export async function postgresForBench(
  url: string,
  seed: (url: string) => Promise<void>,
): Promise<{ url: string; where: string; remove(): Promise<void> } | null> {
  if (url) {
    await seed(url);
    return { url, where: 'the given database', remove: () => Promise.resolve() };
  }
  const bin = postgresBinDir();
  if (!bin) return null;
  const cluster = await startThrowawayCluster({ bin });
  try {
    const { default: pg } = await import('pg');
    const admin = new pg.Client({ connectionString: cluster.url('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE bench');
    await admin.end();
    await seed(cluster.url('bench'));
  } catch (err) {
    await cluster.remove();
    throw err;
  }
  return { url: cluster.url('bench'), where: 'a throwaway cluster on loopback, default settings', remove: () => cluster.remove() };
}
