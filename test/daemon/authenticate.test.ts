import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage } from 'node:http';
import { createAuthenticator } from '../../src/daemon/authenticate.js';
import type { RequestContext } from '../../src/daemon/routes.js';
import { openStore } from '../../src/store/store.js';

test('requests that find the "any key?" answer stale share one read of it, unless a key was created meanwhile', async (t) => {
  const store = await openStore({ file: join(mkdtempSync(join(tmpdir(), 'cs-llm-auth-')), 'cs-llm.db') });
  t.after(() => store.close());
  let reads = 0;
  const hasActiveKeys = store.keys.hasActiveKeys.bind(store.keys);
  store.keys.hasActiveKeys = () => {
    reads++;
    return hasActiveKeys();
  };
  const authenticate = createAuthenticator(store, true);
  const req = { headers: {} } as IncomingMessage;
  const record = () => ({}) as RequestContext['record'];

  // 50 requests at once (on PostgreSQL each read is a round trip): one read, every one let in (no key yet).
  const open = await Promise.all(Array.from({ length: 50 }, () => authenticate(req, 0, record())));
  assert.equal(reads, 1);
  assert.ok(open.every((caller) => caller !== null));

  // A key created while a read is under way: the requests after it read again and are refused without a key.
  const before = authenticate(req, 5000, record());
  await store.keys.create('ops', 5000);
  const after = await Promise.all([authenticate(req, 5000, record()), authenticate(req, 5000, record())]);
  assert.notEqual(await before, null);
  assert.deepEqual(after, [null, null]);
  assert.equal(reads, 3);
});
