// A throwaway PostgreSQL cluster for the tests of one file (src/bench/postgres.ts starts it: initdb in a
// temporary directory, a loopback port, no system service). It starts once per file (about a second), each
// test gets a place of its own, and it is removed when the file's tests end. Without the binaries the tests
// are skipped with the reason, except in CI (CI=true), where .ci/run installs them and their absence is a
// failure.
import { after } from 'node:test';
import pg from 'pg';
import { postgresBinDir, startThrowawayCluster } from '../../src/bench/postgres.js';

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
  // fsync off: a test cluster is thrown away, and it makes each commit cheap.
  const cluster = await startThrowawayCluster({ bin, settings: { fsync: 'off', full_page_writes: 'off' } });
  after(() => cluster.remove());
  const admin = new pg.Client({ connectionString: cluster.url('postgres') });
  await admin.connect();
  await admin.query('CREATE DATABASE cs');
  await admin.end();
  const base = cluster.url('cs');
  // pageinspect (contrib, in Debian's server package): the tests look at the tuples a table's pages still hold.
  const cs = new pg.Client({ connectionString: base });
  await cs.connect();
  await cs.query('CREATE EXTENSION pageinspect SCHEMA public');
  await cs.end();
  return {
    skip: false,
    cluster: {
      port: cluster.port,
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
      stop: () => cluster.stop(),
      start: () => cluster.start(),
    },
  };
}
