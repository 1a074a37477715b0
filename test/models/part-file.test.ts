import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConflictError } from '../../src/core/errors.js';
import { takePartLock } from '../../src/models/part-file.js';

test('over a stale lock, of eight pulls taking it at once exactly one gets it and the rest are told another pull holds it, every time', async () => {
  // Moving a stale lock aside and putting back a fresh one (the earlier way) let two of eight win in about a
  // third of these rounds.
  for (let round = 0; round < 40; round++) {
    const dir = mkdtempSync(join(tmpdir(), 'cs-llm-part-lock-'));
    const lock = join(dir, 'model.gguf.part.lock');
    writeFileSync(lock, '99999999'); // a pull that died: no such pid
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => takePartLock(lock, join(dir, 'model.gguf.part'))));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, `round ${round}: ${won.length} pulls took the lock`);
    for (const r of results) {
      if (r.status === 'rejected')
        assert.ok(r.reason instanceof ConflictError && /another cs-llm models pull/.test(r.reason.message), String(r.reason));
    }
    await (won[0] as PromiseFulfilledResult<() => Promise<void>>).value();
    assert.deepEqual(readdirSync(dir), [], 'the lock, its breaker and every pull own file are gone after the release');
  }
});
