import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import type { AuditRecord } from '../../src/store/audit.js';
import { readAuditKeyring } from '../../src/store/audit-key.js';
import { verifyAuditChain } from '../../src/store/audit-verify.js';
import { openStore } from '../../src/store/store.js';
import { cli, startHarness, text } from '../daemon/harness.js';
import { foundIn } from '../helpers/db-files.js';

const PII = 'Hi, I am Li Wei, mail li.wei@example.com, mobile 13812345678, card 4111 1111 1111 1111.';

test('stored turns hold placeholders while the model got the original text; the database never sees it', async (t) => {
  const h = await startHarness(t);
  const reply = text(
    await h.client({ sessionId: 'pii-1' }).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: PII }] }),
  );
  // The simulator quotes the user's message: the model saw it unchanged.
  assert.match(reply, /li\.wei@example\.com, mobile 13812345678, card 4111 1111 1111 1111/);

  const res = await fetch(`${h.daemon.url}/v1/sessions/pii-1`);
  const stored = (await res.json()) as { messages: Array<{ role: string; content: string }> };
  assert.equal(stored.messages[0]!.content, 'Hi, I am Li Wei, mail [EMAIL], mobile [PHONE], card [CARD].');
  assert.match(stored.messages[1]!.content, /mail \[EMAIL\], mobile \[PHONE\], card \[CARD\]/, "the model's echo is redacted too");
  for (const secret of ['li.wei@example.com', '13812345678', '4111 1111 1111 1111'])
    assert.deepEqual(foundIn(h.daemon.store.file, secret), []);
});

test('with store.redactUpstream "always" the model gets the redacted text too', async (t) => {
  const h = await startHarness(t, { config: { store: { redactUpstream: 'always' } } });
  const stateless = text(await h.client().chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: PII }] }));
  assert.match(stateless, /mail \[EMAIL\], mobile \[PHONE\], card \[CARD\]/);
  const turn = text(
    await h.client({ sessionId: 'pii-2' }).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: PII }] }),
  );
  assert.match(turn, /mail \[EMAIL\], mobile \[PHONE\]/);
  assert.doesNotMatch(turn, /li\.wei/);
});

test('every request is audited without contents in a hash chain that verifies, and altering one record breaks it there', async (t) => {
  let key = '';
  const h = await startHarness(t, {
    beforeStart: async (paths) => {
      const s = await openStore({ file: paths.dbFile });
      key = (await s.keys.create('frontend', Date.now())).key;
      await s.close();
    },
  });
  const client = h.client({ sessionId: 'audited', apiKey: key });
  await client.chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'first question, marker AUDIT-TEXT-1' }],
  });
  await client.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'second question' }], stream: false });
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/audited`, { headers: { authorization: `Bearer ${key}` } })).status, 200);
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions`)).status, 401);
  const file = h.daemon.store.file;
  await h.daemon.close('test over');

  const db = new Database(file);
  t.after(() => db.close());
  const rows = db.prepare('SELECT * FROM audit_log ORDER BY seq').all() as Array<Record<string, unknown>>;
  assert.equal(rows.length, 4);
  const prefix = key.slice(0, 12);
  assert.deepEqual(
    rows.map((r) => [r.method, r.route, r.session_id, r.key_id, r.status]),
    [
      ['POST', '/v1/chat/completions', 'audited', prefix, 200],
      ['POST', '/v1/chat/completions', 'audited', prefix, 200],
      ['GET', '/v1/sessions/:id', 'audited', prefix, 200],
      ['GET', '/v1/sessions', null, null, 401],
    ],
  );
  assert.equal(rows[0]!.upstream, 'local');
  assert.ok((rows[0]!.prompt_tokens as number) > 0 && (rows[0]!.completion_tokens as number) > 0);
  assert.ok((rows[0]!.latency_ms as number) > 0);
  const all = JSON.stringify(rows);
  assert.ok(!all.includes(key), 'never the key');
  assert.ok(!all.includes('AUDIT-TEXT') && !all.includes('question'), 'never message contents');
  assert.equal(verifyAuditChain(db, readAuditKeyring(join(h.paths.stateDir, 'audit.key'))).ok, true);

  assert.throws(() => db.prepare('UPDATE audit_log SET status = 500 WHERE seq = 2').run(), /append-only/);
  assert.throws(() => db.prepare('DELETE FROM audit_log WHERE seq = 4').run(), /append-only/);

  const env = { CS_LLM_HOME: h.home };
  const ok = await cli(['audit', 'verify', '--db', file], { env });
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.match(ok.stdout, /audit log ok: 4 record\(s\)/);

  const exported = await cli(['audit', 'export', '--since', '1h', '--json', '--db', file], { env });
  assert.equal(exported.exitCode, 0, exported.stderr);
  const lines = exported.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as AuditRecord & { at: string });
  assert.deepEqual(
    lines.map((r) => r.seq),
    [1, 2, 3, 4],
  );
  assert.equal(lines[0]!.hash, rows[0]!.hash);
  assert.ok(Date.parse(lines[0]!.at) > Date.now() - 3_600_000);

  db.exec('DROP TRIGGER audit_log_no_update');
  db.prepare('UPDATE audit_log SET status = 204 WHERE seq = 2').run();
  const broken = await cli(['audit', 'verify', '--db', file, '--json'], { env });
  assert.equal(broken.exitCode, 4);
  assert.deepEqual((JSON.parse(broken.stdout) as { broken: { seq: number } }).broken.seq, 2);
  assert.match(broken.stderr, /broken at record 2: record 2 was altered/);
});

test('DELETE /v1/sessions/:id answers once the text is gone from both files; sessions export shows what is kept', async (t) => {
  const h = await startHarness(t);
  for (const id of ['erase-me', 'keep-me']) {
    const client = h.client({ sessionId: id });
    for (let i = 0; i < 3; i++)
      await client.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: `turn ${i} of MARKER-${id}` }] });
  }
  const file = h.daemon.store.file;
  assert.notDeepEqual(foundIn(file, 'MARKER-erase-me'), []);

  const res = await fetch(`${h.daemon.url}/v1/sessions/erase-me`, { method: 'DELETE' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { id: 'erase-me', tenant: 'default', object: 'session', deleted: true, scrubbed: true });
  assert.deepEqual(foundIn(file, 'MARKER-erase-me'), []);
  assert.notDeepEqual(foundIn(file, 'MARKER-keep-me'), []);

  // A reader holding an old snapshot keeps the WAL from being emptied: the erasure is scheduled (202) and
  // finishes on its own once the reader lets go.
  const reader = new Database(file);
  t.after(() => reader.close());
  reader.exec('BEGIN');
  reader.prepare('SELECT COUNT(*) FROM messages').get();
  const scheduled = await fetch(`${h.daemon.url}/v1/sessions/keep-me-not`, { method: 'DELETE' });
  assert.equal(scheduled.status, 404, 'absent sessions are still 404');
  const client = h.client({ sessionId: 'later' });
  await client.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'MARKER-later' }] });
  const pending = await fetch(`${h.daemon.url}/v1/sessions/later`, { method: 'DELETE' });
  assert.equal(pending.status, 202);
  assert.deepEqual(await pending.json(), { id: 'later', tenant: 'default', object: 'session', deleted: true, scrubbed: false });
  reader.exec('COMMIT');
  assert.equal(await h.daemon.store.sessions.scrubbed(10_000), true);
  assert.deepEqual(foundIn(file, 'MARKER-later'), []);

  // Audit records reach the database within the flush interval.
  await new Promise((r) => setTimeout(r, 300));
  const exported = await cli(['sessions', 'export', 'keep-me', '--db', file], { env: { CS_LLM_HOME: h.home } });
  assert.equal(exported.exitCode, 0, exported.stderr);
  const doc = JSON.parse(exported.stdout) as {
    session: { turns: number; messages: Array<{ role: string; content: string; createdAt: string }> };
    audit: AuditRecord[];
  };
  assert.equal(doc.session.turns, 3);
  assert.equal(doc.session.messages.length, 6);
  assert.equal(doc.session.messages[0]!.content, 'turn 0 of MARKER-keep-me');
  assert.ok(!Number.isNaN(Date.parse(doc.session.messages[0]!.createdAt)));
  assert.equal(doc.audit.length, 3, "its three turns; the other sessions' requests are not in it");
  assert.ok(doc.audit.every((r) => r.sessionId === 'keep-me' && r.route === '/v1/chat/completions'));
});

test("a session's retention only shrinks: switching X-Profile to one that keeps sessions longer does not extend it", async (t) => {
  let now = Date.UTC(2026, 0, 1);
  const day = 86_400_000;
  const h = await startHarness(t, {
    now: () => now,
    config: {
      profiles: {
        brief: { retentionSeconds: 3600, ttlSeconds: 86_400 },
        lasting: { ttlSeconds: 86_400 },
      },
    },
  });
  const turn = (profile: string) =>
    h.client({ sessionId: 'kept', profile }).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] });
  // createdAt and expiresAt as milliseconds (the API gives ISO dates).
  const times = (s: { createdAt: string; expiresAt: string }) => ({
    createdAt: Date.parse(s.createdAt),
    expiresAt: Date.parse(s.expiresAt),
  });
  const session = async () =>
    times((await (await fetch(`${h.daemon.url}/v1/sessions/kept`)).json()) as { createdAt: string; expiresAt: string });
  await turn('brief');
  const first = await session();
  assert.equal(first.expiresAt, first.createdAt + 3_600_000, 'the brief profile keeps it an hour from its first turn');
  now += 60_000;
  await turn('lasting');
  assert.equal((await session()).expiresAt, first.createdAt + 3_600_000, 'a profile with no retention cap does not lift the cap');
  now += 60_000;
  await turn('brief');
  now += 60_000;
  await turn('lasting');
  assert.equal((await session()).expiresAt, first.createdAt + 3_600_000);
  now = first.createdAt + 3_600_000;
  assert.equal((await fetch(`${h.daemon.url}/v1/sessions/kept`)).status, 404, 'gone when the shortest retention it had ran out');
  // A session that starts on the lasting profile is kept as long as its TTL slides.
  await h.client({ sessionId: 'long', profile: 'lasting' }).chat.completions.create({
    model: 'cs-llm-sim',
    messages: [{ role: 'user', content: 'hi' }],
  });
  const long = times((await (await fetch(`${h.daemon.url}/v1/sessions/long`)).json()) as { createdAt: string; expiresAt: string });
  assert.equal(long.expiresAt, long.createdAt + day);
});
