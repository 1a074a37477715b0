import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDaemon } from '../../src/daemon/server.js';
import { createAuditWriter, type AuditEntry } from '../../src/store/audit.js';
import { createAuditKeyring, readAuditKeyring } from '../../src/store/audit-key.js';
import { verifyAuditChain } from '../../src/store/audit-verify.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { openSqliteStore } from '../../src/store/sqlite-store.js';
import { cli, startHarness } from '../daemon/harness.js';

/** The store with its connection, which the functions of audit.ts take. */
function openStore(options: { file: string }) {
  const { store, db } = openSqliteStore(options);
  return Object.assign(store, { db });
}

type Row = Record<string, unknown> & { seq: number; prev_hash: string; hash: string };

/** The audit record's canonical encoding, as the source publishes it: an attacker knows it. */
function canonical(r: Row): string {
  const ms = (n: unknown) => Math.round((n as number) * 1000) / 1000;
  return JSON.stringify([
    r.seq,
    r.at,
    r.key_id,
    r.method,
    r.route,
    r.session_id,
    r.upstream,
    r.status,
    r.outcome,
    r.error_code,
    r.prompt_tokens,
    r.completion_tokens,
    ms(r.latency_ms),
    ms(r.upstream_ms),
  ]);
}

const sha256Link = (prev: string, r: Row) => createHash('sha256').update(prev).update('\n').update(canonical(r)).digest('hex');

/**
 * What someone with write access to the database (not to the key file) can do: drop the append-only
 * trigger, change a record, and hash the chain again from it with plain SHA-256 so every link matches.
 */
function rewriteAndRehash(file: string, seq: number, change: string): void {
  const db = new Database(file);
  try {
    db.exec('DROP TRIGGER IF EXISTS audit_log_no_update');
    db.prepare(`UPDATE audit_log SET ${change} WHERE seq = ?`).run(seq);
    const rows = db.prepare('SELECT * FROM audit_log WHERE seq >= ? ORDER BY seq').all(seq - 1) as Row[];
    let prev = rows[0]!.seq === seq ? rows[0]!.prev_hash : rows[0]!.hash;
    const set = db.prepare('UPDATE audit_log SET prev_hash = ?, hash = ? WHERE seq = ?');
    for (const r of rows) {
      if (r.seq < seq) continue;
      const hash = sha256Link(prev, r);
      set.run(prev, hash, r.seq);
      prev = hash;
    }
  } finally {
    db.close();
  }
}

async function auditedDaemon(t: Parameters<typeof startHarness>[0], turns = 4) {
  const h = await startHarness(t);
  const client = h.client({ sessionId: 'customer-7' });
  for (let i = 0; i < turns; i++)
    await client.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: `q${i}` }] });
  const file = h.daemon.store.file;
  await h.daemon.close('test over');
  return { h, file, env: { CS_LLM_HOME: h.home } };
}

test('a record rewritten and the chain hashed again with SHA-256 (write access to the database, not the key) fails audit verify at that record', async (t) => {
  const { file, env } = await auditedDaemon(t);
  const before = await cli(['audit', 'verify', '--db', file], { env });
  assert.equal(before.exitCode, 0, before.stderr);

  rewriteAndRehash(file, 2, "status = 204, outcome = 'ok', completion_tokens = 1");
  const after = await cli(['audit', 'verify', '--db', file, '--json'], { env });
  assert.equal(after.exitCode, 4, after.stdout);
  assert.equal((JSON.parse(after.stdout) as { broken: { seq: number } }).broken.seq, 2);
  assert.match(after.stderr, /broken at record 2: record 2 was altered/);
});

test('the audit key is a file of mode 0600 in the state directory, made on first use and the same across restarts', async (t) => {
  const { h, file, env } = await auditedDaemon(t, 1);
  const keyFile = join(h.paths.stateDir, 'audit.key');
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);
  const text = readFileSync(keyFile, 'utf8');
  const ids = await cli(['audit', 'key-id'], { env });
  assert.equal(ids.exitCode, 0, ids.stderr);
  assert.match(ids.stdout, /^[0-9a-f]{12} \(in force\)$/);
  // The database holds the key's id, never the key.
  const keyLine = text.split('\n').find((l) => l !== '' && !l.startsWith('#'))!;
  const db = new Database(file, { readonly: true });
  const dump = JSON.stringify(db.prepare('SELECT * FROM audit_chain').all());
  db.close();
  assert.ok(dump.includes(ids.stdout.slice(0, 12)));
  assert.ok(!readFileSync(file).includes(Buffer.from(keyLine, 'base64')) && !dump.includes(keyLine));

  const verified = await cli(['audit', 'verify', '--db', file], { env });
  assert.equal(verified.exitCode, 0, verified.stderr);
  assert.match(
    verified.stdout,
    new RegExp(`audit log ok: 1 record\\(s\\), hash chain intact; HMAC-SHA-256 under audit key ${ids.stdout.slice(0, 12)} from record 1$`),
  );
});

/** A database as cs-llm wrote it before the keyed chain (schema 3): `n` records chained with plain SHA-256. */
function schema3Database(n: number, pruneUpTo = 0): string {
  const file = join(mkdtempSync(join(tmpdir(), 'cs-llm-audit-v3-')), 'cs-llm.db');
  const db = new Database(file);
  for (const m of MIGRATIONS.filter((m) => m.version <= 3)) db.exec(m.sql);
  db.pragma('user_version = 3');
  const insert = db.prepare(
    `INSERT INTO audit_log (seq, at, key_id, method, route, session_id, upstream, status, outcome, error_code, prompt_tokens,
       completion_tokens, latency_ms, upstream_ms, prev_hash, hash) VALUES (@seq, @at, @key_id, @method, @route, @session_id,
       @upstream, @status, @outcome, @error_code, @prompt_tokens, @completion_tokens, @latency_ms, @upstream_ms, @prev_hash, @hash)`,
  );
  let prev = '0'.repeat(64);
  for (let seq = 1; seq <= n; seq++) {
    const row = {
      seq,
      at: Date.parse('2026-01-01T00:00:00Z') + seq * 1000,
      key_id: null,
      method: 'POST',
      route: '/v1/chat/completions',
      session_id: `old-${seq}`,
      upstream: 'local',
      status: 200,
      outcome: 'ok',
      error_code: null,
      prompt_tokens: 9,
      completion_tokens: 3,
      latency_ms: 12.25,
      upstream_ms: 11.5,
      prev_hash: prev,
      hash: '',
    };
    row.hash = sha256Link(prev, row as Row);
    insert.run(row);
    prev = row.hash;
  }
  if (pruneUpTo > 0) {
    const last = db.prepare('SELECT hash FROM audit_log WHERE seq = ?').get(pruneUpTo) as { hash: string };
    db.prepare('INSERT INTO audit_anchor (id, seq, hash, pruned_records, pruned_at) VALUES (1, ?, ?, ?, ?)').run(
      pruneUpTo,
      last.hash,
      pruneUpTo,
      Date.now(),
    );
    db.prepare('DELETE FROM audit_log WHERE seq <= ?').run(pruneUpTo);
  }
  db.close();
  return file;
}

function entry(sessionId: string): AuditEntry {
  return {
    at: Date.now(),
    keyId: null,
    method: 'GET',
    route: '/v1/sessions/:id',
    sessionId,
    upstream: null,
    status: 200,
    outcome: 'ok',
    errorCode: null,
    promptTokens: null,
    completionTokens: null,
    latencyMs: 0.5,
    upstreamMs: 0,
  };
}

test('a schema-3 log opened by this version keeps its SHA-256 records verifiable and goes on keyed from the last one', async (t) => {
  const file = schema3Database(6, 2);
  const ring = createAuditKeyring(join(mkdtempSync(join(tmpdir(), 'cs-llm-audit-key-')), 'audit.key'));
  const store = openStore({ file });
  t.after(() => store.close());
  assert.equal(verifyAuditChain(store.db, null).ok, true, 'the migration alone changes nothing');
  const writer = createAuditWriter(store.db, ring);
  writer.append(entry('new-1'));
  writer.append(entry('new-2'));
  writer.close();

  const check = verifyAuditChain(store.db, ring);
  assert.equal(check.ok, true, JSON.stringify(check.broken));
  assert.equal(check.records, 6);
  assert.equal(check.unkeyedRecords, 4);
  assert.deepEqual(check.keys, [{ fromSeq: 7, keyId: ring.current.id }]);
  assert.equal(check.anchor?.keyId, ring.current.id, 'the old anchor is signed on first use');
  const rows = store.db.prepare('SELECT seq, prev_hash, hash FROM audit_log WHERE seq >= 6 ORDER BY seq').all() as Row[];
  assert.equal(rows[1]!.prev_hash, rows[0]!.hash, 'the first keyed record chains from the last SHA-256 one');
  await store.close();

  // The old records are bound to the keyed chain: rewriting one and hashing everything again is found where
  // the key starts, and so is re-pointing that start.
  rewriteAndRehash(file, 4, 'status = 500');
  const again = openStore({ file });
  t.after(() => again.close());
  const rewritten = verifyAuditChain(again.db, ring);
  assert.equal(rewritten.broken?.seq, 7);
  assert.match(rewritten.broken!.reason, /record 7 does not follow record 6/);
  const lastOld = (again.db.prepare('SELECT hash FROM audit_log WHERE seq = 6').get() as { hash: string }).hash;
  again.db.exec('DROP TRIGGER audit_chain_write_once');
  again.db.prepare('UPDATE audit_chain SET prev_hash = ?').run(lastOld);
  assert.match(verifyAuditChain(again.db, ring).broken!.reason, /start of the chain under audit key .* \(record 7\) was altered/);
});

test('records a daemon of the previous version wrote after this version migrated the file stay plain SHA-256, and the key starts after them', async (t) => {
  const file = schema3Database(2);
  openStore({ file }).close(); // e.g. cs-llm keys list of the new version, while the old daemon still runs
  const old = new Database(file);
  const last = old.prepare('SELECT * FROM audit_log WHERE seq = 2').get() as Row;
  let prev = last.hash;
  for (const seq of [3, 4]) {
    const row = { ...last, seq, at: Date.now() - 1000, prev_hash: prev, hash: '' } as Row;
    row.hash = sha256Link(prev, row);
    old
      .prepare(
        // The columns named, as that daemon's own insert does (later versions add columns, e.g. the tenant).
        `INSERT INTO audit_log (seq, at, key_id, method, route, session_id, upstream, status, outcome, error_code, prompt_tokens,
           completion_tokens, latency_ms, upstream_ms, prev_hash, hash)
         VALUES (@seq, @at, @key_id, @method, @route, @session_id, @upstream, @status, @outcome, @error_code, @prompt_tokens,
           @completion_tokens, @latency_ms, @upstream_ms, @prev_hash, @hash)`,
      )
      .run(row);
    prev = row.hash;
  }
  old.close();

  const ring = createAuditKeyring(join(mkdtempSync(join(tmpdir(), 'cs-llm-audit-key-')), 'audit.key'));
  const store = openStore({ file });
  t.after(() => store.close());
  const writer = createAuditWriter(store.db, ring);
  writer.append(entry('new'));
  writer.close();
  const check = verifyAuditChain(store.db, ring);
  assert.equal(check.ok, true, JSON.stringify(check.broken));
  assert.equal(check.unkeyedRecords, 4);
  assert.deepEqual(check.keys, [
    { fromSeq: 3, keyId: null },
    { fromSeq: 5, keyId: ring.current.id },
  ]);
});

test('removing the key records or moving where the key starts, to pass SHA-256 records off as old ones, is found', async (t) => {
  const file = schema3Database(2);
  const ring = createAuditKeyring(join(mkdtempSync(join(tmpdir(), 'cs-llm-audit-key-')), 'audit.key'));
  const store = openStore({ file });
  t.after(() => store.close());
  const writer = createAuditWriter(store.db, ring);
  for (const id of ['a', 'b', 'c']) writer.append(entry(id));
  writer.close();
  await store.close();

  const db = new Database(file);
  t.after(() => db.close());
  db.exec('DROP TRIGGER audit_chain_write_once; DROP TRIGGER audit_chain_no_delete');
  // Every record after the old ones hashed with SHA-256, and the key's start moved past them (signed or not):
  // those records are newer than the key, which no record from before the key can be.
  rewriteAndRehash(file, 3, "session_id = 'someone-else'");
  db.prepare('UPDATE audit_chain SET from_seq = 6, prev_hash = (SELECT hash FROM audit_log WHERE seq = 5)').run();
  for (const unsign of [false, true]) {
    if (unsign) db.prepare('UPDATE audit_chain SET key_id = NULL, tag = NULL').run();
    const check = verifyAuditChain(db, ring);
    assert.equal(check.broken?.seq, 3);
    assert.match(check.broken!.reason, /record 3 is chained with plain SHA-256 but was written at .*, after the audit key was made/);
  }
  db.prepare('DELETE FROM audit_chain').run();
  const removed = verifyAuditChain(db, ring);
  assert.equal(removed.ok, false);
  assert.match(removed.broken!.reason, /audit_chain\) was removed/);
});

test('without its key the daemon does not start; audit new-key starts a new key, and the old records verify again once their key is back', async (t) => {
  const first = await auditedDaemon(t, 2);
  const keyFile = join(first.h.paths.stateDir, 'audit.key');
  const lost = readFileSync(keyFile, 'utf8');
  const lostId = readAuditKeyring(keyFile)!.current.id;
  rmSync(keyFile);

  const { config, paths } = first.h;
  await assert.rejects(
    startDaemon({ config, paths, port: 0 }),
    (err: Error & { next?: string }) =>
      new RegExp(`chained under audit key ${lostId} \\(from record 1\\), but the key file ${keyFile} does not exist`).test(err.message) &&
      /cs-llm audit new-key/.test(err.next ?? ''),
  );
  assert.ok(!existsSync(keyFile), 'no new key is made while the log needs the old one');

  const started = await cli(['audit', 'new-key', '--db', first.file, '--json'], { env: first.env });
  assert.equal(started.exitCode, 0, started.stderr);
  const result = JSON.parse(started.stdout) as { keyId: string; fromSeq: number; previousKeyId: string; previousKeyHeld: boolean };
  assert.deepEqual([result.fromSeq, result.previousKeyId, result.previousKeyHeld], [3, lostId, false]);
  assert.equal(statSync(keyFile).mode & 0o777, 0o600);

  const daemon = await startDaemon({ config, paths, port: 0 });
  assert.equal((await fetch(`${daemon.url}/v1/models`)).status, 200);
  await daemon.close('test over');

  const store = openStore({ file: first.file });
  t.after(() => store.close());
  const without = verifyAuditChain(store.db, readAuditKeyring(keyFile));
  assert.deepEqual(without.broken && [without.broken.seq, without.broken.keyMissing], [1, lostId]);
  // The lost key found again (a backup): its line added back to the file, everything verifies.
  const backupLine = lost.split('\n').find((l) => l !== '' && !l.startsWith('#'))!;
  const now = readFileSync(keyFile, 'utf8');
  writeFileSync(keyFile, `${now}${backupLine}\n`);
  const withBoth = verifyAuditChain(store.db, readAuditKeyring(keyFile));
  assert.equal(withBoth.ok, true, JSON.stringify(withBoth.broken));
  assert.deepEqual(
    withBoth.keys.map((k) => k.keyId),
    [lostId, result.keyId],
  );
});

test('an audit key file other users may read is refused with the chmod that fixes it', async (t) => {
  const { h } = await auditedDaemon(t, 1);
  const keyFile = join(h.paths.stateDir, 'audit.key');
  chmodSync(keyFile, 0o644);
  await assert.rejects(
    startDaemon({ config: h.config, paths: h.paths, port: 0 }),
    (err: Error & { next?: string }) => /has mode 0644: other users could read it/.test(err.message) && err.next === `chmod 600 ${keyFile}`,
  );
});

test('a flush of more records than one multi-row insert holds stores each record with its own fields, in order, and verifies', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-audit-group-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const store = openStore({ file: join(dir, 'cs-llm.db') });
  const ring = createAuditKeyring(join(dir, 'audit.key'));
  const writer = createAuditWriter(store.db, ring, { flushMs: 60_000 });
  // 37: two whole groups of the writer's multi-row insert and 5 rows alone, in one transaction.
  const entries: AuditEntry[] = Array.from({ length: 37 }, (_, i) => ({
    at: 1_765_000_000_000 + i,
    keyId: i % 2 === 0 ? `key${i}` : null,
    method: 'POST',
    route: '/v1/chat/completions',
    sessionId: i % 3 === 0 ? `s${i}` : null,
    upstream: 'engine',
    status: 200 + i,
    outcome: 'ok',
    errorCode: null,
    promptTokens: i,
    completionTokens: 2 * i,
    latencyMs: i + 0.1234567,
    upstreamMs: i / 2,
    tenant: i % 4 === 0 ? 'shop-a' : null,
  }));
  for (const e of entries) writer.append(e);
  writer.close();
  const check = verifyAuditChain(store.db, ring);
  assert.deepEqual([check.ok, check.records], [true, 37]);
  const rows = store.db
    .prepare('SELECT seq, at, key_id, session_id, status, completion_tokens, latency_ms, tenant FROM audit_log ORDER BY seq')
    .all();
  assert.deepEqual(
    rows,
    entries.map((e, i) => ({
      seq: i + 1,
      at: e.at,
      key_id: e.keyId,
      session_id: e.sessionId,
      status: e.status,
      completion_tokens: e.completionTokens,
      latency_ms: Math.round(e.latencyMs * 1000) / 1000,
      tenant: e.tenant,
    })),
  );
  await store.close();
});
