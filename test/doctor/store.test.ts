import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import pg from 'pg';
import { checkStore } from '../../src/doctor/store.js';
import { openStore } from '../../src/store/store.js';
import { freePort } from '../helpers/ports.js';
import { testCluster } from '../helpers/postgres.js';

const postgres = await testCluster();

test('a SQLite store is named with its size, or as made at first start', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-doctor-store-'));
  const file = join(dir, 'cs-llm.db');
  const fresh = await checkStore(file);
  assert.deepEqual([fresh.status, fresh.detail], ['ok', `SQLite at ${file}, created when the daemon first starts`]);
  writeFileSync(file, Buffer.alloc(3 * 1048576));
  assert.equal((await checkStore(file)).detail, `SQLite at ${file} (3.0 MiB)`);
});

test('a PostgreSQL store that answers: its server version and schema, empty before the first daemon', { skip: postgres.skip }, async () => {
  const url = await postgres.cluster!.database();
  const empty = await checkStore(url);
  assert.equal(empty.status, 'ok', empty.detail);
  assert.match(empty.detail, /^PostgreSQL \d+\.\d+.* at postgres:\/\/.* answers \(empty: the daemon creates its tables at first start\)$/);
  const store = await openStore({ file: url });
  await store.close();
  assert.match((await checkStore(url)).detail, /answers \(schema \d+\)$/);
});

test('a PostgreSQL store with a newer schema than this cs-llm fails the check, naming the upgrade', { skip: postgres.skip }, async () => {
  const url = await postgres.cluster!.database();
  const store = await openStore({ file: url });
  await store.close();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query('INSERT INTO cs_llm_schema (version, applied_at) VALUES (999, 0)');
  await client.end();
  const check = await checkStore(url);
  assert.equal(check.status, 'fail');
  assert.match(check.detail, /schema version 999, newer than this cs-llm understands/);
  assert.match(check.fix!, /Upgrade cs-llm/);
});

test('a PostgreSQL store that does not answer fails the check that up needs, without the password, with the fix', async () => {
  const port = await freePort();
  const check = await checkStore(`postgres://shop:s3cret@127.0.0.1:${port}/cs`, 1000);
  assert.deepEqual([check.name, check.status, check.neededByUp], ['store', 'fail', true]);
  assert.match(
    check.detail,
    /the PostgreSQL store at postgres:\/\/shop:\*\*\*@127\.0\.0\.1:\d+\/cs does not answer from this host: .*(ECONNREFUSED|refused)/i,
  );
  assert.ok(!check.detail.includes('s3cret'));
  assert.match(check.fix!, /pg_hba\.conf/);
});
