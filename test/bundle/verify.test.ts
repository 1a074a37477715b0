/*
 * Verification reads nothing but the bundle file: these bundles are written by hand (no Docker), then
 * damaged in the ways a copy goes wrong, and every problem must name the member it concerns.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { readArchiveIndex } from '../../src/bundle/archive.js';
import { BundleIntegrityError, inspectBundle, requireVerifiedBundle } from '../../src/bundle/verify.js';
import { NotFoundError } from '../../src/core/errors.js';
import { runCli } from '../helpers/cli.js';
import { sha256, TINY_PREFIX, writeHandMadeBundle, type HandMadeMember } from './fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'cs-llm-verify-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const blobA = randomBytes(300_000);
const blobB = Buffer.from('{"architectures": []}');
const members: HandMadeMember[] = [
  { path: 'image.tar', data: randomBytes(5000) },
  { path: `${TINY_PREFIX}/blobs/${sha256(blobA)}`, data: blobA },
  { path: `${TINY_PREFIX}/blobs/${sha256(blobB)}`, data: blobB },
  { path: `${TINY_PREFIX}/snapshots/r1/model.safetensors`, target: `../../blobs/${sha256(blobA)}` },
  { path: `${TINY_PREFIX}/snapshots/r1/config.json`, target: `../../blobs/${sha256(blobB)}` },
  { path: `${TINY_PREFIX}/refs/main`, data: Buffer.from('r1') },
];
let counter = 0;
async function bundle(tamper?: Parameters<typeof writeHandMadeBundle>[2], list = members): Promise<string> {
  const file = join(dir, `b${counter++}.tar`);
  await writeHandMadeBundle(file, list, tamper);
  return file;
}

async function problemsOf(file: string): Promise<string[]> {
  return (await inspectBundle(file)).problems;
}

test('an intact bundle verifies: every member present with its size and sha256', async () => {
  const result = await inspectBundle(await bundle());
  assert.deepEqual(result.problems, []);
  assert.equal(result.verified, true);
  assert.equal(result.manifest.members.length, members.length);
});

test('one altered byte in any member is named, and only that member', async () => {
  const file = await bundle();
  const index = await readArchiveIndex(file);
  const target = index.entries.find((e) => e.path === members[1]!.path)!;
  const fd = openSync(file, 'r+');
  const at = target.dataOffset + 12345;
  writeSync(fd, Buffer.from([readFileSync(file)[at]! ^ 0x01]), 0, 1, at);
  closeSync(fd);
  assert.deepEqual(await problemsOf(file), [`member ${members[1]!.path} does not match its sha256 (altered or corrupt)`]);
  await assert.rejects(requireVerifiedBundle(file), (err: Error) => {
    assert.ok(err instanceof BundleIntegrityError);
    assert.match(err.message, new RegExp(`member ${members[1]!.path}`));
    assert.match(err.next ?? '', /Nothing was changed/);
    return true;
  });
});

test('a file cut inside a member names that member and every member after it as missing', async () => {
  const file = await bundle();
  const index = await readArchiveIndex(file);
  const target = index.entries.find((e) => e.path === members[1]!.path)!;
  truncateSync(file, target.dataOffset + 1000);
  const problems = await problemsOf(file);
  assert.equal(problems[0], `member ${members[1]!.path} is truncated: the file ends after 1000 of its ${blobA.length} bytes`);
  for (const later of members.slice(2))
    assert.ok(
      problems.some((p) => p.startsWith(`member ${later.path} is missing`)),
      problems.join('\n'),
    );
});

test('a file cut in its end marker is reported even though every member is whole', async () => {
  const file = await bundle();
  const size = readFileSync(file).length;
  truncateSync(file, size - 1024);
  assert.deepEqual(await problemsOf(file), [`the archive has no end marker after member ${members.at(-1)!.path} (truncated)`]);
});

test('a member the manifest does not list is refused by name', async () => {
  const file = await bundle((m) => {
    m.members = m.members.filter((x) => !x.path.endsWith('refs/main'));
  });
  assert.deepEqual(await problemsOf(file), [`member ${TINY_PREFIX}/refs/main is in the file but not in the manifest`]);
});

test('a link whose target differs from the manifest is named', async () => {
  const file = await bundle((m) => {
    const link = m.members.find((x) => x.type === 'symlink')!;
    if (link.type === 'symlink') link.target = '../../blobs/other';
  });
  const problems = await problemsOf(file);
  assert.equal(problems.length, 1);
  assert.match(
    problems[0]!,
    /snapshots\/r1\/model\.safetensors points to \.\.\/\.\.\/blobs\/[0-9a-f]{64}, the manifest says \.\.\/\.\.\/blobs\/other/,
  );
});

test('a manifest that would write outside the model folder is refused before anything is read', async () => {
  const escaping = await bundle(undefined, [members[0]!, { path: `${TINY_PREFIX}/../../../../etc/evil`, data: Buffer.from('x') }]);
  await assert.rejects(inspectBundle(escaping), /not a clean relative path/);
  const link = await bundle(undefined, [members[0]!, { path: `${TINY_PREFIX}/snapshots/r1/x`, target: '../../../../../../etc/passwd' }]);
  await assert.rejects(inspectBundle(link), /points outside its model folder/);
  const otherModel = await bundle(undefined, [
    members[0]!,
    { path: 'models/hf-cache/hub/models--Other--Model/blobs/x', data: Buffer.from('x') },
  ]);
  await assert.rejects(inspectBundle(otherModel), /outside models\/hf-cache\/hub\/models--Org--Tiny\//);
  const gguf = (m: Parameters<NonNullable<Parameters<typeof writeHandMadeBundle>[2]>>[0]) => {
    m.engine = 'cpu';
    m.model = { id: 'tiny', entry: {}, store: 'gguf', file: 'tiny.gguf' };
  };
  await inspectBundle(await bundle(gguf, [members[0]!, { path: 'models/gguf/tiny.gguf', data: Buffer.from('GGUF') }]));
  await assert.rejects(
    inspectBundle(await bundle(gguf, [members[0]!, { path: 'models/gguf/other.gguf', data: Buffer.from('GGUF') }])),
    /is not the bundle's GGUF file models\/gguf\/tiny\.gguf/,
  );
});

test('an altered byte in the manifest itself is refused as a corrupt manifest', async () => {
  const file = await bundle();
  const text = readFileSync(file);
  const at = text.indexOf('"formatVersion"', 512);
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.from('{'), 0, 1, at);
  closeSync(fd);
  await assert.rejects(
    inspectBundle(file),
    (err: Error) => err instanceof BundleIntegrityError && /manifest\.json is not valid JSON/.test(err.message),
  );
});

test('files that are not bundles get a reason and a next step, not a stack trace', async () => {
  const gz = join(dir, 'gz.tar.gz');
  writeFileSync(gz, gzipSync(readFileSync(await bundle())));
  await assert.rejects(
    inspectBundle(gz),
    (err: BundleIntegrityError) => /gzip-compressed/.test(err.message) && /gunzip -k/.test(err.next ?? ''),
  );
  const text = join(dir, 'notes.txt');
  writeFileSync(text, 'hello, this is not a tar archive at all'.repeat(40));
  await assert.rejects(inspectBundle(text), /is not a readable cs-llm bundle/);
  await assert.rejects(inspectBundle(join(dir, 'nope.tar')), NotFoundError);
});

test('bundle inspect prints the manifest and exits 4 naming the bad member', async () => {
  const good = await bundle();
  const ok = await runCli(['bundle', 'inspect', good], { env: { CS_LLM_HOME: dir } });
  assert.equal(ok.exitCode, 0, String(ok.stderr));
  assert.match(String(ok.stdout), /verified: all 6 members match their size and sha256/);
  assert.match(String(ok.stdout), /model: tiny \(Org\/Tiny, revision r1\)/);

  truncateSync(good, (await readArchiveIndex(good)).entries[1]!.dataOffset + 10);
  const bad = await runCli(['bundle', 'inspect', good, '--json'], { env: { CS_LLM_HOME: dir } });
  assert.equal(bad.exitCode, 4);
  const parsed = JSON.parse(String(bad.stdout)) as { verified: boolean; problems: string[] };
  assert.equal(parsed.verified, false);
  assert.match(parsed.problems[0]!, /^member image\.tar is truncated/);
  const plain = await runCli(['bundle', 'inspect', good], { env: { CS_LLM_HOME: dir } });
  assert.equal(plain.exitCode, 4);
  assert.match(String(plain.stderr), /error: bundle .* does not match its manifest: member image\.tar is truncated/);
  assert.doesNotMatch(String(plain.stderr), /\n\s+at /);
});
