import { test } from 'node:test';
import Database from 'better-sqlite3';
import assert from 'node:assert/strict';
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../../src/store/store.js';
import { openSqliteStore, type SqliteStore } from '../../src/store/sqlite-store.js';
import { WINDOW_SQL } from '../../src/store/sqlite-sessions.js';
import { storeTest } from '../helpers/stores.js';
import { EXPIRY_BUCKET_MS as B, bucketOf } from '../../src/store/expiry-bucket.js';

/** The store, and its connection for looking at the rows. */
function tempStore(t: { after(fn: () => Promise<void>): void }): SqliteStore {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-store-'));
  const opened = openSqliteStore({ file: join(dir, 'cs-llm.db') });
  t.after(() => opened.store.close());
  return opened;
}

const HOUR = 3_600_000;
const user = (content: string) => ({ role: 'user', content });
const assistant = (content: string) => ({ role: 'assistant', content });

storeTest('a session stores turns in order and loads the last N turns of them', async (t, backend) => {
  const store = await backend.open();
  for (let i = 1; i <= 5; i++)
    await store.sessions.appendTurn('default', 's1', 'default', [user(`q${i}`), assistant(`a${i}`)], HOUR, 1000 + i);
  const window = await store.sessions.loadWindow('default', 's1', 2, 2000);
  assert.deepEqual(
    window.map((m) => [m.turn, m.message.role, m.message.content]),
    [
      [4, 'user', 'q4'],
      [4, 'assistant', 'a4'],
      [5, 'user', 'q5'],
      [5, 'assistant', 'a5'],
    ],
  );
  const whole = (await store.sessions.get('default', 's1', 2000))!;
  assert.equal(whole.messages.length, 10);
  assert.equal(whole.turns, 5);
  assert.equal(whole.createdAt, 1001);
  assert.equal(whole.updatedAt, 1005);
  assert.equal(whole.expiresAt, 1005 + HOUR);
});

storeTest('tool calls, tool results and content parts come back as they were stored', async (t, backend) => {
  const store = await backend.open();
  const call = { id: 'call_1', type: 'function', function: { name: 'track_order', arguments: '{"order_id":"12345"}' } };
  const parts = [{ type: 'text', text: 'look at this' }];
  await store.sessions.appendTurn(
    'default',
    's',
    'default',
    [
      { role: 'user', content: parts },
      { role: 'assistant', content: null, tool_calls: [call] },
    ],
    HOUR,
    1,
  );
  await store.sessions.appendTurn(
    'default',
    's',
    'default',
    [{ role: 'tool', content: '{"status":"shipped"}', tool_call_id: 'call_1', name: 'track_order' }, assistant('It shipped.')],
    HOUR,
    2,
  );
  const messages = (await store.sessions.get('default', 's', 3))!.messages;
  assert.deepEqual(messages, [
    { role: 'user', content: parts },
    { role: 'assistant', content: null, tool_calls: [call] },
    { role: 'tool', content: '{"status":"shipped"}', tool_call_id: 'call_1', name: 'track_order' },
    { role: 'assistant', content: 'It shipped.' },
  ]);
});

storeTest('an expired session is never served and a new turn on its id starts afresh', async (t, backend) => {
  const store = await backend.open();
  await store.sessions.appendTurn('default', 's', 'default', [user('old'), assistant('old reply')], 1000, 0);
  assert.equal((await store.sessions.loadWindow('default', 's', 10, 999)).length, 2);
  assert.deepEqual(await store.sessions.loadWindow('default', 's', 10, 1000), []);
  assert.equal(await store.sessions.get('default', 's', 1000), null);
  assert.equal((await store.sessions.list({ tenant: null, now: 1000, limit: 10 })).sessions.length, 0);
  await store.sessions.appendTurn('default', 's', 'default', [user('new'), assistant('new reply')], 1000, 5000);
  const fresh = (await store.sessions.get('default', 's', 5001))!;
  assert.deepEqual(
    fresh.messages.map((m) => m.content),
    ['new', 'new reply'],
  );
  assert.equal(fresh.createdAt, 5000);
  assert.equal(fresh.turns, 1);
});

storeTest('each append renews the sliding expiry', async (t, backend) => {
  const store = await backend.open();
  await store.sessions.appendTurn('default', 's', 'default', [user('a')], 1000, 0);
  await store.sessions.appendTurn('default', 's', 'default', [user('b')], 1000, 900);
  assert.equal((await store.sessions.get('default', 's', 1500))!.expiresAt, 1900);
});

storeTest('the sweeper deletes expired sessions and their messages in batches, and leaves live ones', async (t, backend) => {
  const store = await backend.open();
  for (let i = 0; i < 7; i++) await store.sessions.appendTurn('default', `dead${i}`, 'default', [user('x'), assistant('y')], 10, 0);
  await store.sessions.appendTurn('default', 'alive', 'default', [user('x'), assistant('y')], HOUR, 0);
  assert.equal(await store.sessions.sweepExpired(100, 5), 5);
  assert.equal(await store.sessions.sweepExpired(100, 5), 2);
  assert.equal(await store.sessions.sweepExpired(100, 5), 0);
  const rows = await backend.rows('SELECT session_id, COUNT(*) AS n FROM messages GROUP BY session_id');
  assert.deepEqual(rows, [{ session_id: 'alive', n: 2 }]);
});

storeTest('listing pages through sessions, most recently updated first, with a cursor', async (t, backend) => {
  const store = await backend.open();
  for (let i = 0; i < 5; i++) await store.sessions.appendTurn('default', `s${i}`, 'default', [user('x')], HOUR, 100 + i);
  const first = await store.sessions.list({ tenant: null, now: 200, limit: 2 });
  assert.deepEqual(
    first.sessions.map((s) => s.id),
    ['s4', 's3'],
  );
  const second = await store.sessions.list({ tenant: null, now: 200, limit: 2, cursor: first.nextCursor });
  assert.deepEqual(
    second.sessions.map((s) => s.id),
    ['s2', 's1'],
  );
  const third = await store.sessions.list({ tenant: null, now: 200, limit: 2, cursor: second.nextCursor });
  assert.deepEqual(
    third.sessions.map((s) => s.id),
    ['s0'],
  );
  assert.equal(third.nextCursor, null);
});

// The expiry indexes hold the expiry's bucket (expiry-bucket.ts), the rows the exact expiry: every read stays exact
// at a bucket's edges. Expiries: 10B - 1 (the last moment of bucket 9), 10B (the first of bucket 10), 10B + 1, 12B.
storeTest('expiries on both sides of a bucket boundary are exact in reads, listings, counts and the sweep', async (t, backend) => {
  const store = await backend.open();
  const at = { before: 10 * B - 1, edge: 10 * B, after: 10 * B + 1, far: 12 * B };
  for (const [id, expires] of Object.entries(at)) await store.sessions.appendTurn('t', id, 'default', [user(id)], B, expires - B);
  const listed = async (now: number, tenant: string | null = 't') => {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof store.sessions.list>> = await store.sessions.list({ tenant, now, limit: 1, cursor });
      ids.push(...page.sessions.map((s) => s.id));
      cursor = page.nextCursor;
    } while (cursor);
    return ids;
  };
  // A moment before the first expiry every session is live, listed newest expiry first across the buckets.
  assert.deepEqual(await listed(10 * B - 2), ['far', 'after', 'edge', 'before']);
  assert.deepEqual(await listed(10 * B - 2, null), ['far', 'after', 'edge', 'before']);
  assert.equal(await store.sessions.sweepExpired(10 * B - 2), 0);
  // At an expiry the session is gone from every read, though its bucket is still now's or the next one.
  assert.equal(await store.sessions.get('t', 'before', 10 * B - 1), null);
  assert.deepEqual(await listed(10 * B - 1), ['far', 'after', 'edge']);
  assert.deepEqual(await store.sessions.liveSessions('t', 'before', 10 * B - 1, 3), { live: 3, nextExpiry: 10 * B, exists: false });
  assert.deepEqual(await listed(10 * B), ['far', 'after']);
  assert.equal((await store.sessions.liveSessions('t', 'after', 10 * B, 10)).live, 2);
  assert.equal((await store.sessions.get('t', 'after', 10 * B))!.expiresAt, 10 * B + 1);
  // The sweep at 10B takes the two expired ones (buckets 9 and 10) and leaves 'after' in bucket 10.
  assert.equal(await store.sessions.sweepExpired(10 * B), 2);
  assert.deepEqual(
    (await backend.rows<{ id: string }>('SELECT id FROM sessions ORDER BY id')).map((r) => r.id),
    ['after', 'far'],
  );
  assert.equal(await store.sessions.sweepExpired(10 * B + 1, 500, 't'), 1);
  assert.deepEqual(await listed(10 * B + 1, null), ['far']);
});

storeTest("a turn's sliding expiry: listing order exact within a bucket and across one, the bucket the expiry's", async (t, backend) => {
  const store = await backend.open();
  const turn = (id: string, expires: number) => store.sessions.appendTurn('t', id, 'default', [user('x')], B, expires - B);
  await turn('s1', 10 * B + 100);
  await turn('s2', 10 * B + 200);
  const ids = async () => (await store.sessions.list({ tenant: 't', now: 9 * B, limit: 10 })).sessions.map((s) => s.id);
  assert.deepEqual(await ids(), ['s2', 's1']);
  // s1's expiry moves past s2's within the bucket, then s2's into the next bucket.
  await turn('s1', 10 * B + 300);
  assert.deepEqual(await ids(), ['s1', 's2']);
  await turn('s2', 11 * B + 5);
  assert.deepEqual(await ids(), ['s2', 's1']);
  const rows = await backend.rows<{ id: string; expires_at: number; expiry_bucket: number }>(
    'SELECT id, expires_at, expiry_bucket FROM sessions ORDER BY id',
  );
  assert.deepEqual(
    rows.map((r) => [r.id, Number(r.expires_at), Number(r.expiry_bucket)]),
    [
      ['s1', 10 * B + 300, 10],
      ['s2', 11 * B + 5, 11],
    ],
  );
  // A retention cap moves the expiry back (here into an earlier bucket): the bucket follows.
  const capped = await backend.open({ protection: { retentionMs: () => B / 2 } });
  await capped.sessions.capRetention(null);
  assert.deepEqual(
    (await backend.rows<{ expires_at: number; expiry_bucket: number }>('SELECT expires_at, expiry_bucket FROM sessions')).map(
      (r) => Number(r.expiry_bucket) === bucketOf(Number(r.expires_at)),
    ),
    [true, true],
  );
  assert.deepEqual(await ids(), ['s2', 's1']);
});

storeTest('delete and prune remove whole sessions', async (t, backend) => {
  const store = await backend.open();
  await store.sessions.appendTurn('default', 'a', 'default', [user('x')], HOUR, 100);
  await store.sessions.appendTurn('default', 'b', 'default', [user('x')], HOUR, 200);
  await store.sessions.appendTurn('default', 'c', 'default', [user('x')], HOUR, 300);
  assert.equal(await store.sessions.delete('default', 'a'), true);
  assert.equal(await store.sessions.delete('default', 'a'), false);
  assert.equal(await store.sessions.pruneOlderThan(250), 1);
  assert.deepEqual(
    (await store.sessions.list({ tenant: null, now: 400, limit: 10 })).sessions.map((s) => s.id),
    ['c'],
  );
  assert.deepEqual(await backend.rows('SELECT COUNT(*) AS n FROM messages'), [{ n: 1 }]);
});

test('loading a window and appending a turn use the indexes, not a table scan or a sort', async (t) => {
  const { db } = tempStore(t);
  const plan = (sql: string, ...params: unknown[]) =>
    (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(...params) as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
  const window = plan(WINDOW_SQL, 10, 'default', 's', 1);
  assert.match(window, /SEARCH s USING PRIMARY KEY \(tenant=\? AND id=\?\)/);
  assert.match(window, /SEARCH m USING INDEX messages_by_session \(tenant=\? AND session_id=\? AND turn>\?\)/);
  assert.doesNotMatch(window, /SCAN|TEMP B-TREE/);
  assert.match(
    plan('UPDATE sessions SET turns = turns + 1 WHERE tenant = ? AND id = ? AND expires_at > ?', 'default', 's', 1),
    /USING PRIMARY KEY \(tenant=\? AND id=\?\)/,
  );
  // One tenant's listing pages through its own index range; every tenant's (an operator's) through the expiry
  // index; both sort only within the buckets they reach, never the listing.
  const tenantPage = plan(
    `SELECT * FROM sessions WHERE tenant = ? AND expiry_bucket BETWEEN ? AND ? AND expires_at > ?
       AND (expires_at < ? OR (expires_at = ? AND id < ?)) ORDER BY expiry_bucket DESC, expires_at DESC, id DESC LIMIT ?`,
    'a',
    0,
    1,
    1,
    5,
    5,
    'x',
    10,
  );
  assert.match(tenantPage, /USING INDEX sessions_by_tenant \(tenant=\? AND expiry_bucket>\? AND expiry_bucket<\?\)/);
  assert.match(tenantPage, /TEMP B-TREE FOR LAST 2 TERMS OF ORDER BY/);
  assert.doesNotMatch(tenantPage, /SCAN/);
  const allPage = plan(
    `SELECT * FROM sessions WHERE expiry_bucket BETWEEN ? AND ? AND expires_at > ? AND (expires_at, tenant, id) < (?, ?, ?)
     ORDER BY expiry_bucket DESC, expires_at DESC, tenant DESC, id DESC LIMIT ?`,
    0,
    1,
    1,
    5,
    'a',
    'x',
    10,
  );
  assert.match(allPage, /USING INDEX sessions_by_expiry \(expiry_bucket>\? AND expiry_bucket<\?\)/);
  assert.match(allPage, /TEMP B-TREE FOR LAST 3 TERMS OF ORDER BY/);
  assert.doesNotMatch(allPage, /SCAN/);
  // A turn's UPDATE sets expires_at, not the bucket: its program (up to its Halt; the bucket's trigger is a
  // program of its own after it) writes the row in the primary key's b-tree and no index entry.
  const ops = db.prepare("EXPLAIN UPDATE sessions SET expires_at = ? WHERE tenant = 'a' AND id = 'x'").all(1) as Array<{ opcode: string }>;
  const main = ops.slice(
    0,
    ops.findIndex((op) => op.opcode === 'Halt'),
  );
  assert.deepEqual(
    main.filter((op) => op.opcode.startsWith('Idx') && op.opcode !== 'IdxGT').map((op) => op.opcode),
    ['IdxInsert'],
  );
});

test('a writer that leaves the bucket out (a daemon of the previous version) gets it from the schema', async (t) => {
  const { db, store } = tempStore(t);
  db.prepare(
    "INSERT INTO sessions (tenant, id, profile, created_at, updated_at, expires_at) VALUES ('default', 'old', 'default', 1, 1, ?)",
  ).run(5 * B + 7);
  const bucket = () => (db.prepare("SELECT expiry_bucket AS b FROM sessions WHERE id = 'old'").get() as { b: number }).b;
  assert.equal(bucket(), 5);
  db.prepare("UPDATE sessions SET expires_at = ? WHERE id = 'old'").run(7 * B);
  assert.equal(bucket(), 7);
  assert.deepEqual(
    (await store.sessions.list({ tenant: null, now: 7 * B - 1, limit: 10 })).sessions.map((s) => s.id),
    ['old'],
  );
});

test('the database is in WAL mode with synchronous NORMAL by default and FULL on request', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-store-'));
  const normal = openSqliteStore({ file: join(dir, 'a.db') });
  assert.equal(normal.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(normal.db.pragma('synchronous', { simple: true }), 1);
  await normal.store.close();
  const full = openSqliteStore({ file: join(dir, 'b.db'), synchronous: 'FULL' });
  assert.equal(full.db.pragma('synchronous', { simple: true }), 2);
  await full.store.close();
});

storeTest('a committed turn is visible to another connection at once (what the daemon promises before [DONE])', async (t, backend) => {
  const store = await backend.open();
  await store.sessions.appendTurn('default', 's', 'default', [user('hello'), assistant('hi')], HOUR, Date.now());
  assert.deepEqual(await backend.rows("SELECT COUNT(*) AS n FROM messages WHERE session_id = 's'"), [{ n: 2 }]);
});

storeTest('the same session id in two tenants is two sessions: windows, reads, deletes and listings never cross', async (t, backend) => {
  const store = await backend.open();
  await store.sessions.appendTurn('shop-a', 'c1', 'default', [user('a: my order'), assistant('a: shipped')], HOUR, 10);
  await store.sessions.appendTurn('shop-b', 'c1', 'default', [user('b: a refund')], HOUR, 20);
  await store.sessions.appendTurn('shop-b', 'c2', 'default', [user('b: hello')], HOUR, 30);
  assert.deepEqual(
    (await store.sessions.loadWindow('shop-a', 'c1', 10, 40)).map((m) => m.message.content),
    ['a: my order', 'a: shipped'],
  );
  assert.deepEqual(
    (await store.sessions.get('shop-b', 'c1', 40))!.messages.map((m) => m.content),
    ['b: a refund'],
  );
  assert.equal(await store.sessions.get('shop-c', 'c1', 40), null);
  assert.equal(await store.sessions.export('shop-c', 'c1'), null);
  const ids = async (tenant: string | null) =>
    (await store.sessions.list({ tenant, now: 40, limit: 10 })).sessions.map((s) => `${s.tenant}/${s.id}`);
  assert.deepEqual(await ids('shop-a'), ['shop-a/c1']);
  assert.deepEqual(await ids('shop-b'), ['shop-b/c2', 'shop-b/c1']);
  assert.deepEqual(await ids(null), ['shop-b/c2', 'shop-b/c1', 'shop-a/c1']);

  assert.equal(await store.sessions.delete('shop-c', 'c1'), false);
  assert.equal(await store.sessions.delete('shop-b', 'c1'), true);
  assert.equal((await store.sessions.loadWindow('shop-a', 'c1', 10, 40)).length, 2, "shop-a's c1 is untouched");
  // A whole tenant, and pruning one tenant's old sessions, leave the others alone.
  await store.sessions.appendTurn('shop-b', 'c3', 'default', [user('b: old')], HOUR, 0);
  assert.equal(await store.sessions.pruneOlderThan(5, 'shop-a'), 0);
  assert.equal(await store.sessions.pruneOlderThan(5, 'shop-b'), 1);
  assert.equal(await store.sessions.deleteTenant('shop-b'), 1);
  assert.deepEqual(await ids(null), ['shop-a/c1']);
});

storeTest(
  "listing every tenant's sessions pages with one cursor across tenants; a cursor of another tenant's listing is refused",
  async (t, backend) => {
    const store = await backend.open();
    for (let i = 0; i < 5; i++) await store.sessions.appendTurn(i % 2 === 0 ? 'a' : 'b', `s${i}`, 'default', [user('x')], HOUR, 100 + i);
    await store.sessions.appendTurn('a', 'same-time', 'default', [user('x')], HOUR, 104);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Awaited<ReturnType<typeof store.sessions.list>> = await store.sessions.list({ tenant: null, now: 200, limit: 2, cursor });
      seen.push(...page.sessions.map((s) => `${s.tenant}/${s.id}`));
      cursor = page.nextCursor;
    } while (cursor);
    assert.deepEqual(seen, ['a/same-time', 'a/s4', 'b/s3', 'a/s2', 'b/s1', 'a/s0']);
    const first = await store.sessions.list({ tenant: 'a', now: 200, limit: 1 });
    await assert.rejects(
      store.sessions.list({ tenant: 'b', now: 200, limit: 1, cursor: first.nextCursor }),
      /not one this server gave out/,
    );
  },
);

storeTest(
  'turns of many sessions at once, two on each, are stored whole and in order, and their windows load apart',
  async (t, backend) => {
    const store = await backend.open();
    const ids = Array.from({ length: 20 }, (_, i) => `many-${i}`);
    // Not awaited one by one: the PostgreSQL store sends the turns made meanwhile together (postgres-batch.ts).
    await Promise.all(
      ids.flatMap((id) => [
        store.sessions.appendTurn('default', id, 'default', [user(`${id} q1`), assistant(`${id} a1`)], HOUR, 10),
        store.sessions.appendTurn('default', id, 'default', [user(`${id} q2`), assistant(`${id} a2`)], HOUR, 11),
      ]),
    );
    const windows = await Promise.all(ids.map((id) => store.sessions.loadWindow('default', id, 5, 20)));
    windows.forEach((window, i) =>
      assert.deepEqual(
        window.map((m) => [m.turn, m.message.content]),
        [
          [1, `${ids[i]} q1`],
          [1, `${ids[i]} a1`],
          [2, `${ids[i]} q2`],
          [2, `${ids[i]} a2`],
        ],
      ),
    );
  },
);

storeTest('a turn the database refuses fails alone: the turns sent with it are stored', async (t, backend) => {
  const store = await backend.open();
  // PostgreSQL's text holds no NUL character (SQLite's does): this tool result's id is refused there.
  const refused = { role: 'tool', content: 'ok', tool_call_id: 'call\u0000' };
  const outcomes = await Promise.allSettled([
    store.sessions.appendTurn('default', 'ok-1', 'default', [user('one')], HOUR, 10),
    store.sessions.appendTurn('default', 'bad', 'default', [refused], HOUR, 10),
    store.sessions.appendTurn('default', 'ok-2', 'default', [user('two')], HOUR, 10),
  ]);
  assert.deepEqual(
    outcomes.map((o) => o.status),
    ['fulfilled', backend.name === 'PostgreSQL' ? 'rejected' : 'fulfilled', 'fulfilled'],
  );
  assert.deepEqual((await store.sessions.get('default', 'ok-1', 20))!.messages, [user('one')]);
  assert.deepEqual((await store.sessions.get('default', 'ok-2', 20))!.messages, [user('two')]);
});

test('turns appended at the same time are committed together, each kept or refused on its own', async (t) => {
  const { store } = tempStore(t);
  const walBytes = () => statSync(`${store.file}-wal`).size;
  const ids = ['p1', 'p2', 'p3', 'p4', 'q1', 'q2', 'q3', 'q4'];
  for (const id of ids) await store.sessions.appendTurn('default', id, 'default', [user('hi'), assistant('hello')], HOUR, 1);
  // The same four turns one after the other, then at the same time: the group writes the pages they share once.
  const w0 = walBytes();
  for (const id of ids.slice(0, 4)) await store.sessions.appendTurn('default', id, 'default', [user('q'), assistant('a')], HOUR, 2);
  const w1 = walBytes();
  await Promise.all(ids.slice(4).map((id) => store.sessions.appendTurn('default', id, 'default', [user('q'), assistant('a')], HOUR, 2)));
  assert.ok(walBytes() - w1 < w1 - w0, `WAL growth: ${walBytes() - w1} bytes at once, ${w1 - w0} one by one`);

  // A message with no role breaks the table's NOT NULL: that turn alone is rolled back (its savepoint).
  const bad = { role: null, content: 'x' } as unknown as { role: string; content: string };
  const results = await Promise.allSettled([
    store.sessions.appendTurn('default', 'a', 'default', [user('a1'), assistant('r1')], HOUR, 2),
    store.sessions.appendTurn('default', 'b', 'default', [user('b1'), bad], HOUR, 2),
    store.sessions.appendTurn('default', 'c', 'default', [user('c1'), assistant('s1')], HOUR, 2),
    store.sessions.appendTurn('default', 'a', 'default', [user('a2'), assistant('r2')], HOUR, 3),
  ]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled', 'fulfilled'],
  );
  assert.match(String((results[1] as PromiseRejectedResult).reason), /NOT NULL/);
  assert.deepEqual(
    (await store.sessions.get('default', 'a', 4))!.messages.map((m) => m.content),
    ['a1', 'r1', 'a2', 'r2'],
  );
  assert.equal(await store.sessions.get('default', 'b', 4), null);
  assert.equal((await store.sessions.get('default', 'c', 4))!.turns, 1);
});

test('a turn appended alone is committed at once; others wait for the turns arriving with them', async (t) => {
  const { store, sessions } = tempStore(t);
  // Alone (no other turn under way in the daemon): in the database before appendTurn returns its promise.
  const alone = store.sessions.appendTurn('default', 'solo', 'default', [user('q'), assistant('a')], HOUR, 1, true);
  assert.equal(sessions.get('default', 'solo', 2)?.turns, 1);
  await alone;
  // Otherwise it waits for the end of the poll phase, when the turns that came with it join its commit.
  const grouped = store.sessions.appendTurn('default', 'group', 'default', [user('q'), assistant('a')], HOUR, 1);
  assert.equal(sessions.get('default', 'group', 2), null);
  await grouped;
  assert.equal(sessions.get('default', 'group', 2)?.turns, 1);
});

test('a window kept in memory is never served stale: a deletion by another connection, a rolled-back turn, a deleted session started again', async (t) => {
  const { store, sessions } = tempStore(t);
  const contents = async (id: string) => (await store.sessions.loadWindow('default', id, 10, 5)).map((m) => m.message.content);
  for (const turn of [1, 2, 3])
    await store.sessions.appendTurn('default', 'w', 'default', [user(`q${turn}`), assistant(`a${turn}`)], HOUR, 1);
  assert.deepEqual(await contents('w'), ['q1', 'a1', 'q2', 'a2', 'q3', 'a3']);
  // Kept now; the next turn extends what is kept.
  await store.sessions.appendTurn('default', 'w', 'default', [user('q4'), assistant('a4')], HOUR, 2);
  assert.deepEqual((await contents('w')).slice(-2), ['q4', 'a4']);

  // Another process deletes one turn's rows: the session's turn count stays, PRAGMA data_version moves.
  const other = new Database(store.file);
  other.prepare("DELETE FROM messages WHERE session_id = 'w' AND turn = 2").run();
  other.close();
  assert.deepEqual(await contents('w'), ['q1', 'a1', 'q3', 'a3', 'q4', 'a4']);

  // A turn whose transaction is rolled back after its rows went in (here the caller's own step fails).
  assert.throws(() =>
    sessions.appendTurn('default', 'w', 'default', [user('never')], HOUR, 3, {
      then: () => {
        throw new Error('the caller gave up');
      },
    }),
  );
  assert.deepEqual(await contents('w'), ['q1', 'a1', 'q3', 'a3', 'q4', 'a4']);

  // Deleted and started again: the new session's first turn is turn 1, as the old one's was.
  await store.sessions.appendTurn('default', 'x', 'default', [user('old')], HOUR, 1);
  assert.deepEqual(await contents('x'), ['old']);
  assert.equal(await store.sessions.delete('default', 'x'), true);
  assert.deepEqual(await contents('x'), []);
  await store.sessions.appendTurn('default', 'x', 'default', [user('new')], HOUR, 4);
  assert.deepEqual(await contents('x'), ['new']);
  // Expired: no window, as the query says.
  assert.deepEqual(await store.sessions.loadWindow('default', 'x', 10, 4 + HOUR), []);
});
