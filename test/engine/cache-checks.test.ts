import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { EnvironmentError } from '../../src/core/errors.js';
import { checkCacheWritable } from '../../src/engine/cache-checks.js';
import { hfRepoCacheDir } from '../../src/engine/model-files.js';

test('a Hugging Face cache the engine user cannot write (left root-owned) is refused with the chown that repairs it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-hfcache-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const repo = 'Qwen/Qwen2.5-7B-Instruct-AWQ';
  const snapshots = join(hfRepoCacheDir(dir, repo), 'snapshots');
  mkdirSync(snapshots, { recursive: true });
  // Everything the operator's (uid 4321) except one folder an engine running as root left behind.
  for (const path of [dir, join(dir, 'hub'), hfRepoCacheDir(dir, repo), snapshots]) chownSync(path, 4321, 4321);
  checkCacheWritable(dir, repo, '4321:4321');
  chownSync(snapshots, 0, 0);
  chmodSync(snapshots, 0o755);
  assert.throws(
    () => checkCacheWritable(dir, repo, '4321:4321'),
    (err: unknown) => {
      assert.ok(err instanceof EnvironmentError);
      assert.match(err.message, /runs as 4321:4321 and cannot write .*snapshots .*owner 0:0, mode 755/);
      assert.equal(
        err.next,
        `Give the cache to the user who runs cs-llm up: sudo chown -R 4321:4321 ${dir} (an engine that ran as root leaves it root-owned), or point engine.hfCacheDir at a folder of yours.`,
      );
      return true;
    },
  );
  // Root without capabilities (the container drops them all) is held to the same bits: a folder of 4321's, 0755.
  chownSync(snapshots, 4321, 4321);
  assert.throws(() => checkCacheWritable(dir, repo, '0:0'), EnvironmentError);
  // Group-writable for the engine's group is enough; a folder not there yet is created by the engine.
  chownSync(snapshots, 0, 4321);
  chmodSync(snapshots, 0o775);
  checkCacheWritable(dir, repo, '4321:4321');
  checkCacheWritable(join(dir, 'not-yet'), repo, '4321:4321');
});
