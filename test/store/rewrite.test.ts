// `store scrub --rewrite` (StoreMaintenance.rewrite): a copy of deleted text that sits in a page's free space,
// where secure_delete does not reach, is gone after the rewrite, and the live rows are untouched. The copy is
// made on purpose here: the same rows deleted by a connection with secure_delete off, so the text is in the
// file before the rewrite (SQLite can leave such a copy itself when a page is rebuilt; docs/data-flow.md).

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { openStore } from '../../src/store/store.js';
import { runCli } from '../helpers/cli.js';
import { storeTest } from '../helpers/stores.js';

const HOUR = 3_600_000;

function fileHas(file: string, text: string): boolean {
  const bytes = (name: string) => {
    try {
      return readFileSync(name);
    } catch {
      return Buffer.alloc(0);
    }
  };
  return bytes(file).includes(text) || bytes(`${file}-wal`).includes(text);
}

/** A database holding a kept session and, in free space only, the text of a deleted one. */
async function withLeftover(): Promise<{ file: string; home: string }> {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-rewrite-'));
  const file = join(home, 'cs-llm.db');
  const store = await openStore({ file });
  const now = Date.now();
  for (let i = 0; i < 40; i++) {
    await store.sessions.appendTurn(
      'default',
      `gone-${i}`,
      'default',
      [{ role: 'user', content: `ERASE-ME-${i} ${'x'.repeat(300)}` }],
      HOUR,
      now,
    );
    await store.sessions.appendTurn(
      'default',
      `kept-${i}`,
      'default',
      [{ role: 'user', content: `KEEP-ME-${i} ${'y'.repeat(300)}` }],
      HOUR,
      now,
    );
  }
  await store.close();
  const raw = new Database(file);
  raw.pragma('secure_delete = OFF');
  raw.exec("DELETE FROM messages WHERE session_id LIKE 'gone-%'; DELETE FROM sessions WHERE id LIKE 'gone-%';");
  raw.pragma('wal_checkpoint(TRUNCATE)');
  raw.close();
  assert.ok(fileHas(file, 'ERASE-ME-7'), 'the deleted text is still in the file, in free space');
  return { file, home };
}

test('a rewrite removes deleted text from pages free space and keeps every live session', async () => {
  const { file } = await withLeftover();
  const store = await openStore({ file });
  const scrubbedOnly = await store.maintenance.scrub(5000);
  assert.equal(scrubbedOnly, true);
  assert.ok(fileHas(file, 'ERASE-ME-7'), 'a plain scrub does not reach free space');
  assert.equal(await store.maintenance.rewrite(5000), true);
  await store.close();
  for (let i = 0; i < 40; i++) assert.ok(!fileHas(file, `ERASE-ME-${i} `), `ERASE-ME-${i} left after the rewrite`);
  const reopened = await openStore({ file });
  const kept = await reopened.sessions.get('default', 'kept-7', Date.now());
  assert.match(JSON.stringify(kept), /KEEP-ME-7 /);
  assert.equal(await reopened.stats.messageCount(), 40);
  await reopened.close();
});

test('cs-llm store scrub --rewrite says what it did and how the file size changed', async () => {
  const { file, home } = await withLeftover();
  const run = await runCli(['store', 'scrub', '--rewrite', '--db', file], { env: { CS_LLM_HOME: home } });
  assert.equal(run.exitCode, 0, String(run.stderr));
  assert.match(String(run.stdout), /^rewrote .*cs-llm\.db from its live rows \([\d.]+ MiB -> [\d.]+ MiB\)\nscrubbed /);
  assert.ok(!fileHas(file, 'ERASE-ME-7 '));
});

storeTest('a rewrite after deletions leaves the deleted text nowhere and the kept sessions whole', async (_t, backend) => {
  const store = await backend.open();
  const now = Date.now();
  for (const id of ['gone', 'kept']) {
    await store.sessions.appendTurn('default', id, 'default', [{ role: 'user', content: `REWRITE-${id}-TEXT` }], HOUR, now);
  }
  assert.equal(await store.sessions.delete('default', 'gone'), true);
  assert.equal(await store.maintenance.rewrite(10_000), true);
  assert.deepEqual(await backend.textFound('REWRITE-gone-TEXT'), []);
  assert.match(JSON.stringify(await store.sessions.get('default', 'kept', now)), /REWRITE-kept-TEXT/);
});
