import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { StoreUnavailableError } from '../../src/store/interface.js';
import { openPool } from '../../src/store/postgres-db.js';
import { testCluster } from '../helpers/postgres.js';

const postgres = await testCluster();

test(
  'a connection the server ends in the middle of a transaction fails that transaction, and the process lives on',
  { skip: postgres.skip },
  async (t) => {
    const url = await postgres.cluster!.database();
    const db = openPool({ url, max: 2 });
    t.after(() => db.close());
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    t.after(() => admin.end());
    const outcome = db.tx(async (client) => {
      const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      // The server ends this connection while the transaction waits between two statements (as pg_ctl -m
      // fast does to every connection): the client hears of it with no query of its own running.
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      await client.query('SELECT 1');
    });
    await assert.rejects(outcome, (err: unknown) => err instanceof StoreUnavailableError);
    // The pool drops the broken connection and serves the next call on a new one.
    assert.equal((await db.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1);
  },
);
