/*
 * bundle load against crafted bundles, without Docker: links that would let a member be created outside the
 * model cache. The refusal comes from verification, before Docker is asked anything, so DOCKER_HOST points
 * nowhere; and the staging writer itself refuses to create anything through a link on disk.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { mkdirInside, openNewInside, removeStaleStaging, STAGING_PREFIX, stagingPrefix } from '../../src/bundle/staging.js';
import { processStamp } from '../../src/core/process-identity.js';
import { inspectBundle } from '../../src/bundle/verify.js';
import { runCli } from '../helpers/cli.js';
import { TINY_PREFIX, writeHandMadeBundle, type HandMadeMember } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cs-llm-bundle-load-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const NO_DOCKER = 'unix:///nonexistent/cs-llm-test-docker.sock';
const image: HandMadeMember = { path: 'image.tar', data: randomBytes(1000) };

/**
 * The chain of issue 13.1: l1 points two levels up from deep inside the model folder (inside, as text); l2
 * sits "under" l1 and points six levels up from there, which as text is still inside, but on disk l1 already
 * jumped up, so l2 lands two levels above the cache; a file under l2 would be created there.
 */
const deep = `${TINY_PREFIX}/d0/d1/d2/d3/d4/d5`;
const chained: HandMadeMember[] = [
  image,
  { path: `${deep}/l1`, target: '../../../../..' },
  { path: `${deep}/l1/l2`, target: '../../../../../..' },
  { path: `${deep}/l1/l2/evil`, data: Buffer.from('written outside the cache\n') },
];

test('a bundle whose member lies under one of its own links is refused naming the member, and nothing on the host changes', async () => {
  const root = mkdtempSync(join(dir, 'host-'));
  const cache = join(root, 'a', 'b', 'cache');
  mkdirSync(cache, { recursive: true });
  const file = join(dir, 'chained.tar');
  await writeHandMadeBundle(file, chained);
  const before = readdirSync(root, { recursive: true }).sort();

  const result = await runCli(['bundle', 'load', file], {
    env: { CS_LLM_HOME: join(root, 'home'), CS_LLM_ENGINE_HF_CACHE_DIR: cache, DOCKER_HOST: NO_DOCKER },
  });
  assert.equal(result.exitCode, 4, String(result.stderr));
  assert.ok(String(result.stderr).includes(`member ${deep}/l1/l2 lies under the link ${deep}/l1`), String(result.stderr));
  assert.match(String(result.stderr), /nothing is created through a link/);
  assert.equal(existsSync(join(root, 'a', 'evil')), false);
  assert.deepEqual(readdirSync(root, { recursive: true }).sort(), before, 'nothing on the host changed');
});

test("a link whose target passes through another of the bundle's links is refused, though as text it stays inside", async () => {
  // l1 -> the model folder itself, seen from a/b; then "l1/../../x" is a/x as text but two levels above the folder on disk.
  const file = join(dir, 'through.tar');
  await writeHandMadeBundle(file, [
    image,
    { path: `${TINY_PREFIX}/a/b/l1`, target: '..' },
    { path: `${TINY_PREFIX}/a/b/c`, target: 'l1/../../x' },
  ]);
  await assert.rejects(inspectBundle(file), /link .*a\/b\/c has a target that passes through the link .*a\/b\/l1/);
});

test('the staging writer never creates anything through a link on disk, even one the manifest did not name', () => {
  const root = mkdtempSync(join(dir, 'staging-'));
  const outside = mkdtempSync(join(dir, 'outside-'));
  const staging = join(root, 'staging');
  mkdirSync(join(staging, 'models--Org--Tiny'), { recursive: true });
  symlinkSync(outside, join(staging, 'models--Org--Tiny', 'sneaky'));

  assert.throws(() => mkdirInside(staging, 'models--Org--Tiny/sneaky/deeper'), /models--Org--Tiny\/sneaky is a link, not a folder/);
  assert.throws(() => openNewInside(staging, 'models--Org--Tiny/sneaky/evil'), /is a link, not a folder/);
  assert.throws(() => openNewInside(staging, 'models--Org--Tiny/sneaky'), /EEXIST|ELOOP/);
  assert.deepEqual(readdirSync(outside), [], 'nothing was created outside');

  const made = openNewInside(staging, 'models--Org--Tiny/snapshots/r1/config.json');
  assert.equal(made.path, join(staging, 'models--Org--Tiny', 'snapshots', 'r1', 'config.json'));
  made.close();
});

test('staging folders of killed loads are removed, also when their pid now belongs to another process', async (t) => {
  const hub = mkdtempSync(join(dir, 'hub-'));
  const dead = spawn('true', { stdio: 'ignore' });
  await once(dead, 'exit');
  const stranger = spawn('sleep', ['60'], { stdio: 'ignore' });
  await once(stranger, 'spawn');
  t.after(() => stranger.kill('SIGKILL'));
  const ticks = Number(processStamp(stranger.pid!)!.startTicks);
  const names = {
    dead: `${STAGING_PREFIX}${dead.pid}-1-abc123`,
    reused: `${STAGING_PREFIX}${stranger.pid}-${ticks - 5}-def456`,
    alive: `${STAGING_PREFIX}${stranger.pid}-${ticks}-ghi789`,
    mine: `${stagingPrefix()}jkl012`,
    model: 'models--Org--Tiny',
  };
  for (const name of Object.values(names)) mkdirSync(join(hub, name));
  assert.deepEqual(removeStaleStaging(hub).sort(), [names.dead, names.reused].sort());
  assert.deepEqual(readdirSync(hub).sort(), [names.alive, names.mine, names.model].sort());
});
