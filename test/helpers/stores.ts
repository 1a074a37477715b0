// The store tests, run against both stores: storeTest registers each test twice, once on a SQLite file
// and once on PostgreSQL (a schema of its own on this file's throwaway cluster; skipped with the reason
// when the binaries are missing outside CI). The test gets an opener and a way to read rows with plain SQL
// that both databases answer alike.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import Database from 'better-sqlite3';
import pg from 'pg';
import { openStore, type OpenStoreOptions, type Store } from '../../src/store/store.js';
import { testCluster } from './postgres.js';
import { foundIn } from './db-files.js';

const postgres = await testCluster();

export interface StoreBackend {
  name: 'SQLite' | 'PostgreSQL';
  /** The store's location: a file path or a postgres:// URL. */
  location: string;
  /** Opens (again) the store at this test's location; closed when the test ends. */
  open(options?: Omit<OpenStoreOptions, 'file'>): Promise<Store>;
  /** Rows of a query, for looking at what is stored ($1-style parameters are not needed by the tests). */
  rows<T = Record<string, unknown>>(sql: string): Promise<T[]>;
  /**
   * Where a text can still be read: SQLite, in the database file or its WAL ('db', 'wal'); PostgreSQL, in a
   * tuple of a table's pages, live or dead ('table <name>'). [] when nowhere.
   */
  textFound(text: string): Promise<string[]>;
}

export function storeTest(name: string, fn: (t: TestContext, backend: StoreBackend) => Promise<void>): void {
  test(`${name} [SQLite]`, async (t) => {
    const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-store-')), 'cs-llm.db');
    await fn(t, {
      name: 'SQLite',
      location: file,
      open: async (options = {}) => {
        const store = await openStore({ ...options, file });
        t.after(() => store.close());
        return store;
      },
      textFound: (text) => Promise.resolve(foundIn(file, text)),
      rows: async <T>(sql: string) => {
        const db = new Database(file, { readonly: true });
        try {
          return db.prepare(sql).all() as T[];
        } finally {
          db.close();
        }
      },
    });
  });
  test(`${name} [PostgreSQL]`, { skip: postgres.skip }, async (t) => {
    const url = await postgres.cluster!.database();
    await fn(t, {
      name: 'PostgreSQL',
      location: url,
      open: async (options = {}) => {
        const store = await openStore({ ...options, file: url });
        t.after(() => store.close());
        return store;
      },
      async textFound(text) {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          const needle = Buffer.from(text, 'utf8');
          const found: string[] = [];
          const tables = await client.query<{ name: string; pages: string }>(
            `SELECT c.oid::regclass::text AS name, pg_relation_size(c.oid) / 8192 AS pages FROM pg_class c
             WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind = 'r'`,
          );
          for (const { name, pages } of tables.rows) {
            for (let page = 0; page < Number(pages); page++) {
              const tuples = await client.query<{ t_data: Buffer | null }>(
                'SELECT t_data FROM public.heap_page_items(public.get_raw_page($1, $2))',
                [name, page],
              );
              if (tuples.rows.some((r) => r.t_data?.includes(needle))) found.push(`table ${name}`);
            }
          }
          return [...new Set(found)];
        } finally {
          await client.end();
        }
      },
      rows: async <T>(sql: string) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          // COUNT(*) is a BIGINT there: as a number, as SQLite gives it.
          return (await client.query(sql)).rows.map((r: Record<string, unknown>) =>
            Object.fromEntries(Object.entries(r).map(([k, v]) => [k, typeof v === 'string' && /^n$|count/i.test(k) ? Number(v) : v])),
          ) as T[];
        } finally {
          await client.end();
        }
      },
    });
  });
}

export { postgres };
