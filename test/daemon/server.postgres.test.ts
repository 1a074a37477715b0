// Several daemons, one PostgreSQL (issue 20): two daemons started together on one database migrate it once,
// the turns of one session sent to both are all stored, each whole and in its own turn, the audit log stays
// one valid chain with both writing, and a daemon rides out PostgreSQL going away and coming back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { loadConfig } from '../../src/core/config.js';
import { startDaemon, type Daemon } from '../../src/daemon/server.js';
import { startSimulator } from '../../src/sim/server.js';
import { readAuditKeyring } from '../../src/store/audit-key.js';
import { openStore } from '../../src/store/store.js';
import { testCluster } from '../helpers/postgres.js';

const { cluster, skip } = await testCluster();

async function daemonOn(t: { after(fn: () => Promise<void>): void }, url: string, upstream: string, keyFile: string): Promise<Daemon> {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-pg-daemon-'));
  const { config, paths } = loadConfig({
    env: { CS_LLM_HOME: home },
    flags: { daemon: { upstream }, store: { url, auditKeyFile: keyFile, auditFlushMs: 20 } },
  });
  const daemon = await startDaemon({ config, paths, port: 0 });
  t.after(() => daemon.close('test over'));
  return daemon;
}

async function chat(daemon: Daemon, session: string, content: string) {
  const started = Date.now();
  const res = await request(`${daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': session },
    body: JSON.stringify({ messages: [{ role: 'user', content }], max_tokens: 4 }),
  });
  const body = (await res.body.json()) as { error?: { code: string } };
  return { status: res.statusCode, code: body.error?.code ?? null, ms: Date.now() - started };
}

test('two daemons on one PostgreSQL: one migration, every turn of a shared session stored whole, one audit chain', { skip }, async (t) => {
  const url = await cluster!.database();
  const sim = await startSimulator({ port: 0 });
  t.after(() => sim.close());
  const keyFile = join(mkdtempSync(join(tmpdir(), 'cs-llm-pg-key-')), 'audit.key');
  // Started together on an empty database: the advisory lock lets one migrate, the other finds it done.
  const [a, b] = await Promise.all([daemonOn(t, url, sim.url, keyFile), daemonOn(t, url, sim.url, keyFile)]);
  const questions = Array.from({ length: 12 }, (_, i) => `question ${i}`);
  const results = await Promise.all(questions.map((q, i) => chat(i % 2 === 0 ? a : b, 'shared', q)));
  assert.deepEqual(
    results.map((r) => r.status),
    questions.map(() => 200),
  );
  await Promise.all([a.close('test over'), b.close('test over')]);

  const store = await openStore({ file: url });
  t.after(() => store.close());
  const session = (await store.sessions.export('default', 'shared'))!;
  assert.equal(session.turns, 12);
  // Each turn holds its own question and the reply to it, never another turn's messages.
  const byTurn = new Map<number, string[]>();
  for (const m of session.messages) byTurn.set(m.turn, [...(byTurn.get(m.turn) ?? []), m.role]);
  assert.deepEqual(
    [...byTurn.keys()],
    Array.from({ length: 12 }, (_, i) => i + 1),
  );
  for (const roles of byTurn.values()) assert.deepEqual(roles, ['user', 'assistant']);
  assert.deepEqual(
    session.messages
      .filter((m) => m.role === 'user')
      .map((m) => m.content)
      .sort(),
    [...questions].sort(),
  );
  const check = await store.audit.verify(readAuditKeyring(keyFile));
  assert.equal(check.ok, true, JSON.stringify(check.broken));
  assert.equal(check.records, 12);
});

test(
  'PostgreSQL going away: /readyz not ready and chat 503 store_unavailable within a second, back without a restart, nothing acknowledged lost',
  { skip },
  async (t) => {
    const url = await cluster!.database();
    const sim = await startSimulator({ port: 0 });
    t.after(() => sim.close());
    const keyFile = join(mkdtempSync(join(tmpdir(), 'cs-llm-pg-key-')), 'audit.key');
    const daemon = await daemonOn(t, url, sim.url, keyFile);
    assert.equal((await chat(daemon, 's', 'before')).status, 200);

    await cluster!.stop();
    try {
      const ready = await request(`${daemon.url}/readyz`);
      const readiness = (await ready.body.json()) as { status?: string; store?: string; error?: { code: string; message: string } };
      assert.equal(ready.statusCode, 503);
      // /readyz's own answer, or, when the once-a-second "any key?" check fell due while the cluster stopped
      // (pg_ctl stop can take over a second on a loaded machine), the key check's: the store is down either way.
      if (readiness.error) assert.equal(readiness.error.code, 'store_unavailable');
      else assert.match(readiness.store ?? '', /^failed: the PostgreSQL store at .* is not reachable/);
      const down = await chat(daemon, 's', 'while down');
      assert.deepEqual([down.status, down.code], [503, 'store_unavailable']);
      // Not hung: refused at once (a refused connection fails in milliseconds; the pool's connect timeout
      // bounds a silent server at 1 s). The bound here leaves room for a loaded CI machine.
      assert.ok(down.ms < 5000, `answered in ${down.ms} ms`);
    } finally {
      await cluster!.start();
    }
    // The pool reconnects on its own: the next turn is served and stored after the one acknowledged before.
    assert.equal((await chat(daemon, 's', 'after')).status, 200);
    assert.equal(((await (await request(`${daemon.url}/readyz`)).body.json()) as { status: string }).status, 'ready');
    await daemon.close('test over');
    const store = await openStore({ file: url });
    t.after(() => store.close());
    const messages = (await store.sessions.export('default', 's'))!.messages.filter((m) => m.role === 'user').map((m) => m.content);
    assert.deepEqual(messages, ['before', 'after']);
    // The audit records of the three chats (the refused one too) and the two probes, written once it was back.
    const check = await store.audit.verify(readAuditKeyring(keyFile));
    assert.equal(check.ok, true, JSON.stringify(check.broken));
    const records = [];
    for await (const r of store.audit.since(0)) records.push(`${r.route} ${r.status}`);
    assert.deepEqual(records, [
      '/v1/chat/completions 200',
      '/readyz 503',
      '/v1/chat/completions 503',
      '/v1/chat/completions 200',
      '/readyz 200',
    ]);
  },
);
