// A throwaway PostgreSQL cluster for the tests of one file: initdb in a temporary directory, a loopback
// port, its socket in that directory, no system service. It starts once per file (under a second), each
// test gets a database of its own, and it is stopped when the file's tests end. Without the binaries the
// tests are skipped with the reason, except in CI (CI=true), where .ci/run installs them and their absence
// is a failure.
import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after } from 'node:test';
import pg from 'pg';
import { freePort } from './ports.js';

const run = promisify(execFile);

/** Where Debian's postgresql package puts the server's binaries (docs/ci.md); CS_LLM_PG_BIN overrides. */
export function postgresBinDir(): string | null {
  const candidates = [process.env.CS_LLM_PG_BIN, '/usr/lib/postgresql/16/bin', '/usr/lib/postgresql/15/bin'].filter(
    (d): d is string => typeof d === 'string' && d.length > 0,
  );
  return candidates.find((d) => existsSync(join(d, 'initdb')) && existsSync(join(d, 'pg_ctl'))) ?? null;
}

export interface TestCluster {
  port: number;
  /**
   * A new, empty place for a store: its postgres:// URL. A schema of its own in the cluster's one test
   * database (the URL sets search_path), which costs about 2 ms where a CREATE DATABASE costs over 100.
   */
  database(): Promise<string>;
  /** Stops the server (pg_ctl -m fast: open connections are cut), for tests of an outage. */
  stop(): Promise<void>;
  /** Starts it again on the same port and directory. */
  start(): Promise<void>;
}

export type ClusterOrSkip = { cluster: TestCluster; skip: false } | { cluster: null; skip: string };

let counter = 0;

/**
 * Starts the cluster for this file (call at the top level, with await). Returns the reason to skip instead
 * when the binaries are not installed and CI is not set.
 */
export async function testCluster(): Promise<ClusterOrSkip> {
  const bin = postgresBinDir();
  if (!bin) {
    const reason = 'PostgreSQL server binaries not found (apt-get install postgresql, or set CS_LLM_PG_BIN)';
    if (process.env.CI === 'true') throw new Error(`${reason}: CI installs them (.ci/run)`);
    return { cluster: null, skip: reason };
  }
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-pg-'));
  // initdb refuses root: as root the cluster runs as the postgres user, who must own the directory.
  const asRoot = userInfo().uid === 0;
  const as = async (cmd: string, args: string[]) =>
    asRoot ? run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args]) : run(join(bin, cmd), args);
  if (asRoot) {
    const { stdout } = await run('id', ['-u', 'postgres']);
    const { stdout: gid } = await run('id', ['-g', 'postgres']);
    chownSync(dir, Number(stdout.trim()), Number(gid.trim()));
  }
  const data = join(dir, 'data');
  const user = asRoot ? 'postgres' : userInfo().username;
  await as('initdb', ['-D', data, '-A', 'trust', '-U', user, '--no-sync', '-E', 'UTF8', '--locale=C']);
  const port = await freePort();
  // fsync off: a test cluster is thrown away, and it makes each commit and CREATE DATABASE cheap.
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off -c max_connections=200`;
  const start = () => as('pg_ctl', ['-D', data, '-l', join(dir, 'log'), '-o', options, '-w', 'start']).then(() => undefined);
  const stop = () => as('pg_ctl', ['-D', data, '-m', 'fast', '-w', 'stop']).then(() => undefined);
  await start();
  let running = true;
  const base = `postgres://${user}@127.0.0.1:${port}/cs`;
  const admin = new pg.Client({ connectionString: `postgres://${user}@127.0.0.1:${port}/postgres` });
  await admin.connect();
  await admin.query('CREATE DATABASE cs');
  await admin.end();
  // pageinspect (contrib, in Debian's server package): the tests look at the tuples a table's pages still hold.
  const cs = new pg.Client({ connectionString: base });
  await cs.connect();
  await cs.query('CREATE EXTENSION pageinspect SCHEMA public');
  await cs.end();
  after(async () => {
    if (running) await stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    skip: false,
    cluster: {
      port,
      async database() {
        const name = `t${++counter}`;
        const client = new pg.Client({ connectionString: base });
        await client.connect();
        try {
          await client.query(`CREATE SCHEMA ${name}`);
        } finally {
          await client.end();
        }
        return `${base}?options=${encodeURIComponent(`-c search_path=${name}`)}`;
      },
      async stop() {
        await stop();
        running = false;
      },
      async start() {
        await start();
        running = true;
      },
    },
  };
}
