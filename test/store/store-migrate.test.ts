// cs-llm store migrate: a SQLite store copied whole to PostgreSQL, read back the same there (encrypted rows
// included), its audit chain verified; a target that holds anything is refused unless told to replace it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readAuditKeyring } from '../../src/store/audit-key.js';
import { createCipher, parseKey } from '../../src/store/crypto.js';
import { openStore, type Store } from '../../src/store/store.js';
import { migrateSqliteToPostgres } from '../../src/store/store-migrate.js';
import { testCluster } from '../helpers/postgres.js';

const { cluster, skip } = await testCluster();
const HOUR = 3_600_000;
const KEY = createCipher(parseKey(Buffer.alloc(32, 7).toString('base64'), 'test'));

/** What a store holds, as the interfaces give it. */
async function contents(store: Store, now: number) {
  return {
    sessions: (await store.sessions.list({ tenant: null, now, limit: 10 })).sessions,
    chat: await store.sessions.export('shop', 'chat-1'),
    response: await store.responses.get('shop', 'chain-1', 1, now),
    thread: await store.responses.thread('shop', 'conv-1'),
    keys: await store.keys.list(),
    usage: await store.usage.query({ fromDay: '2026-01-01' }),
  };
}

test(
  'store migrate copies a SQLite store to PostgreSQL whole, audit chain verified, and refuses a non-empty target',
  { skip },
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-llm-migrate-'));
    const file = join(dir, 'cs-llm.db');
    const keyFile = join(dir, 'audit.key');
    const now = Date.now();
    const source = await openStore({ file, protection: { cipher: KEY } });
    await source.sessions.appendTurn(
      'shop',
      'chat-1',
      'default',
      [
        { role: 'user', content: 'where is order 12345?' },
        { role: 'assistant', content: 'shipped' },
      ],
      HOUR,
      now,
    );
    await source.sessions.appendTurn(
      'shop',
      'chat-1',
      'default',
      [
        { role: 'user', content: 'thanks' },
        { role: 'assistant', content: 'welcome' },
      ],
      HOUR,
      now + 1,
    );
    await source.responses.commit(
      'shop',
      'chain-1',
      'default',
      [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'hello' },
      ],
      HOUR,
      now,
      {
        record: {
          inputs: 1,
          outputs: 1,
          previousId: null,
          conversation: false,
          createdAt: now,
          model: 'm',
          status: 'completed',
          inputTokens: 3,
          outputTokens: 4,
          settings: { metadata: { k: 'v' } },
        },
      },
    );
    await source.responses.createConversation('shop', 'conv-1', 'default', { topic: 'refund' }, [], HOUR, now);
    const { key } = await source.keys.create('frontend', now, { tenant: 'shop', profiles: ['default'] });
    await source.usage.add([
      {
        day: '2026-03-01',
        upstream: 'local',
        model: 'm',
        tenant: 'shop',
        keyId: '',
        currency: 'USD',
        requests: 2,
        sessions: 1,
        promptTokens: 10,
        cachedTokens: 0,
        completionTokens: 5,
        cost: 0.25,
      },
    ]);
    const ring = await source.audit.keyring(keyFile);
    const writer = source.audit.writer(ring);
    for (let i = 0; i < 3; i++)
      writer.append({
        at: now + i,
        keyId: null,
        method: 'POST',
        route: '/v1/chat/completions',
        sessionId: 'chat-1',
        upstream: 'local',
        status: 200,
        outcome: 'ok',
        errorCode: null,
        promptTokens: 1,
        completionTokens: 1,
        latencyMs: 1.5,
        upstreamMs: 1,
        tenant: 'shop',
      });
    writer.close();
    const before = await contents(source, now + 2);
    await source.close();

    const url = await cluster!.database();
    const result = await migrateSqliteToPostgres({ from: file, to: url, auditKeyFile: keyFile });
    assert.equal(result.audit.ok, true, JSON.stringify(result.audit.broken));
    assert.equal(result.audit.records, 3);
    assert.equal(result.copied.messages, 6);

    const target = await openStore({ file: url, protection: { cipher: KEY } });
    t.after(() => target.close());
    assert.deepEqual(await contents(target, now + 2), before);
    assert.equal((await target.keys.verify(key))?.tenant, 'shop');
    assert.equal((await target.audit.verify(readAuditKeyring(keyFile))).ok, true);
    // Turns go on where the source left off.
    await target.sessions.appendTurn('shop', 'chat-1', 'default', [{ role: 'user', content: 'one more' }], HOUR, now + 3);
    assert.equal((await target.sessions.get('shop', 'chat-1', now + 3))!.turns, 3);

    await assert.rejects(
      migrateSqliteToPostgres({ from: file, to: url, auditKeyFile: keyFile }),
      /is not empty \(sessions 3, messages 7, /,
    );
    const replaced = await migrateSqliteToPostgres({ from: file, to: url, auditKeyFile: keyFile, replace: true });
    assert.equal(replaced.copied.messages, 6);
    assert.equal((await target.sessions.get('shop', 'chat-1', now + 3))!.turns, 2);
  },
);
