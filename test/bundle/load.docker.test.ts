/*
 * Offline bundles against the real dockerd: create, take the image and the files away, load, check they
 * are back identical, serve with `up --offline`; damaged bundles are refused naming the member and change
 * nothing. The images are our own, so removing them never touches the simulator image other suites use: a
 * tiny one made here for everything but serving, and the simulator plus a label (its own id) for `up`.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { execa } from 'execa';
import type Docker from 'dockerode';
import { loadConfig } from '../../src/core/config.js';
import { tarHeader } from '../../src/core/tar.js';
import { readArchiveIndex } from '../../src/bundle/archive.js';
import { createBundle } from '../../src/bundle/create.js';
import { loadBundle } from '../../src/bundle/load.js';
import type { BundleManifest } from '../../src/bundle/manifest.js';
import { BundleIntegrityError } from '../../src/bundle/verify.js';
import { ROOT, runCli } from '../helpers/cli.js';
import { requireDocker, SIM_IMAGE } from '../helpers/docker.js';
import {
  deriveImage,
  fingerprint,
  imageId,
  pullIfMissing,
  removeImage,
  sha256,
  TINY_PREFIX,
  tinyImage,
  writeFakeHfRepo,
  writeHandMadeBundle,
  type FakeRepo,
} from './fixtures.js';
import { freePort } from '../helpers/ports.js';

const MODEL = 'qwen2.5-7b-instruct-awq';
const REPO = 'Qwen/Qwen2.5-7B-Instruct-AWQ';

/** The real CLI from source, with its output as text. */
async function cli(
  args: string[],
  options: { env: Record<string, string>; timeoutMs?: number },
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const result = await runCli(args, options);
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

describe('offline bundles on the real Docker engine', { timeout: 600_000 }, () => {
  let docker: Docker | null = null;
  let dir = '';
  let home = '';
  let cache = '';
  let env: Record<string, string> = {};
  let image = '';
  let originalId = '';
  let simImage = '';
  let simImageId = '';
  let fake: FakeRepo;
  let originalFiles: Record<string, string> = {};
  let vllmBundle = '';
  let simBundle = '';

  before(async (t) => {
    docker = await requireDocker(t as never);
    dir = mkdtempSync(join(tmpdir(), 'cs-llm-bundle-'));
    home = join(dir, 'home');
    cache = join(dir, 'hf');
    env = { CS_LLM_HOME: home, CS_LLM_ENGINE_HF_CACHE_DIR: cache };
    if (!docker) return;
    await pullIfMissing(docker, SIM_IMAGE);
    const tag = randomBytes(4).toString('hex');
    image = `127.0.0.1:5000/cs-llm/bundle-test:t${tag}`;
    originalId = await tinyImage(docker, image);
    simImage = `127.0.0.1:5000/cs-llm/bundle-test:sim${tag}`;
    simImageId = await deriveImage(docker, SIM_IMAGE, simImage);
    fake = writeFakeHfRepo(cache, REPO);
    originalFiles = fingerprint(fake.repoDir);
  });

  after(async () => {
    if (docker) {
      await cli(['down'], { env }).catch(() => undefined);
      await removeImage(docker, image);
      await removeImage(docker, simImage);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('bundle create writes the manifest first, then the image saved by name, then the model files in the cache layout', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    vllmBundle = join(dir, 'vllm.tar');
    const result = await cli(['bundle', 'create', '--model', MODEL, '--engine', 'vllm', '--image', image, '--out', vllmBundle, '--json'], {
      env,
      timeoutMs: 300_000,
    });
    assert.equal(result.exitCode, 0, result.stderr);
    const manifest = (JSON.parse(result.stdout) as { manifest: BundleManifest }).manifest;
    assert.equal(manifest.image.id, originalId);
    assert.deepEqual(manifest.image.refs, [image]);
    assert.equal(manifest.model.repo, REPO);
    assert.equal(manifest.model.revision, fake.revision);
    assert.equal((manifest.model.entry as { hfRepo?: string }).hfRepo, REPO);

    // Any tar reads it, the manifest comes first, and the snapshot links are real links into blobs.
    const listing = (await execa('tar', ['-tvf', vllmBundle])).stdout.split('\n');
    assert.match(listing[0]!, / manifest\.json$/);
    assert.match(listing[1]!, / image\.tar$/);
    assert.ok(
      listing.some((l) => l.startsWith('l') && l.includes(`snapshots/${fake.revision}/config.json -> ../../blobs/`)),
      listing.join('\n'),
    );
    // Every model file's sha256 in the manifest is the sha256 of the file in the cache.
    for (const member of manifest.members) {
      if (member.role !== 'model-file' || member.type !== 'file') continue;
      const rel = member.path.replace(`models/hf-cache/hub/models--Qwen--Qwen2.5-7B-Instruct-AWQ/`, '');
      assert.equal(member.sha256, sha256(readFileSync(join(fake.repoDir, rel))), member.path);
    }
    // The image member is what docker save wrote: the manifest's hash matches the bytes in the file.
    const index = await readArchiveIndex(vllmBundle);
    const imageEntry = index.entries.find((e) => e.path === 'image.tar')!;
    const bytes = readFileSync(vllmBundle).subarray(imageEntry.dataOffset, imageEntry.dataOffset + imageEntry.size);
    const imageMember = manifest.members.find((m) => m.path === 'image.tar');
    assert.equal(imageMember?.type === 'file' ? imageMember.sha256 : null, sha256(bytes));

    const inspect = await cli(['bundle', 'inspect', vllmBundle], { env });
    assert.equal(inspect.exitCode, 0, inspect.stderr);
    assert.match(inspect.stdout, /verified: all 10 members match their size and sha256/);
  });

  test('bundle load brings back a removed image with the same id and the removed model files with the same hashes', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    assert.ok(vllmBundle, 'the create test ran first');
    await removeImage(docker, image);
    rmSync(fake.repoDir, { recursive: true, force: true });
    assert.equal(await imageId(docker, image), null);

    const result = await cli(['bundle', 'load', vllmBundle], { env, timeoutMs: 300_000 });
    assert.equal(result.exitCode, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`image ${image.replace(/[.]/g, '\\.')}: loaded`));
    assert.match(result.stdout, /model files: 9 written/);
    assert.equal(await imageId(docker, image), originalId);
    assert.deepEqual(fingerprint(fake.repoDir), originalFiles);
    // No staging folder is left behind in the cache.
    assert.deepEqual(readdirNames(join(cache, 'hub')), ['models--Qwen--Qwen2.5-7B-Instruct-AWQ']);
  });

  test('a second load changes nothing and says so', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    const blob = join(
      fake.repoDir,
      'blobs',
      Object.keys(originalFiles)
        .find((k) => k.startsWith('blobs/'))!
        .slice('blobs/'.length),
    );
    const before = statSync(blob);
    const result = await cli(['bundle', 'load', vllmBundle, '--json'], { env, timeoutMs: 300_000 });
    assert.equal(result.exitCode, 0, result.stderr);
    const loaded = JSON.parse(result.stdout) as {
      changed: boolean;
      image: { action: string };
      files: { written: number; skipped: number };
    };
    assert.equal(loaded.changed, false);
    assert.equal(loaded.image.action, 'already-present');
    assert.deepEqual([loaded.files.written, loaded.files.skipped], [0, 9]);
    const afterStat = statSync(blob);
    assert.deepEqual([afterStat.ino, afterStat.mtimeMs], [before.ino, before.mtimeMs]);
    const plain = await cli(['bundle', 'load', vllmBundle], { env, timeoutMs: 300_000 });
    assert.match(plain.stdout, /nothing changed: this bundle was already loaded/);
  });

  test('an image whose layers are here under another name only gets its tag back', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    const alias = `${image}-alias`;
    const at = alias.lastIndexOf(':');
    await docker.getImage(image).tag({ repo: alias.slice(0, at), tag: alias.slice(at + 1) });
    try {
      await removeImage(docker, image); // only untags: the alias keeps the image
      assert.equal(await imageId(docker, image), null);
      const result = await cli(['bundle', 'load', vllmBundle, '--json'], { env, timeoutMs: 300_000 });
      assert.equal(result.exitCode, 0, result.stderr);
      assert.equal((JSON.parse(result.stdout) as { image: { action: string } }).image.action, 'tagged');
      assert.equal(await imageId(docker, image), originalId);
    } finally {
      await docker
        .getImage(alias)
        .remove()
        .catch(() => undefined);
    }
  });

  test('a load into a cache that holds part of the model writes only what is missing', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    const shard = Object.keys(originalFiles).find((k) => k.startsWith('blobs/'))!;
    rmSync(join(fake.repoDir, shard));
    rmSync(join(fake.repoDir, 'refs', 'main'));
    // The staging folder of a load that was killed (its process is gone) is cleared by the next load.
    const gone = execa('true');
    await gone;
    mkdirSync(join(cache, 'hub', `.cs-llm-bundle-${gone.pid}-abc123`, 'blobs'), { recursive: true });
    const result = await cli(['bundle', 'load', vllmBundle, '--json'], { env, timeoutMs: 300_000 });
    assert.equal(result.exitCode, 0, result.stderr);
    const loaded = JSON.parse(result.stdout) as { changed: boolean; files: { written: number; skipped: number } };
    assert.deepEqual([loaded.changed, loaded.files.written, loaded.files.skipped], [true, 2, 7]);
    assert.deepEqual(fingerprint(fake.repoDir), originalFiles);
    assert.deepEqual(readdirNames(join(cache, 'hub')), ['models--Qwen--Qwen2.5-7B-Instruct-AWQ']);
  });

  test('one altered byte in a model file is refused naming the member, and nothing on the host changes', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    const altered = join(dir, 'altered.tar');
    copyFileSync(vllmBundle, altered);
    const index = await readArchiveIndex(altered);
    const shard = index.entries.find((e) => e.type === 'file' && e.size > 200_000 && e.path.includes('/blobs/'))!;
    const fd = openSync(altered, 'r+');
    const at = shard.dataOffset + Math.floor(shard.size / 2);
    const original = readFileSync(altered).subarray(at, at + 1)[0]!;
    writeSync(fd, Buffer.from([original ^ 0xff]), 0, 1, at);
    closeSync(fd);

    await removeImage(docker, image);
    rmSync(fake.repoDir, { recursive: true, force: true });
    const result = await cli(['bundle', 'load', altered], { env, timeoutMs: 300_000 });
    assert.equal(result.exitCode, 4, result.stderr);
    assert.ok(result.stderr.includes(`member ${shard.path} does not match its sha256`), result.stderr);
    assert.match(result.stderr, /Nothing was changed on this host/);
    assert.equal(await imageId(docker, image), null, 'the image was not loaded');
    assert.equal(existsSync(fake.repoDir), false, 'no model files were written');

    const inspect = await cli(['bundle', 'inspect', altered], { env });
    assert.equal(inspect.exitCode, 4);
    assert.ok(inspect.stderr.includes(shard.path), inspect.stderr);
  });

  test('a truncated bundle is refused naming the member that was cut, and nothing on the host changes', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    const cut = join(dir, 'cut.tar');
    copyFileSync(vllmBundle, cut);
    const index = await readArchiveIndex(cut);
    const imageEntry = index.entries.find((e) => e.path === 'image.tar')!;
    truncateSync(cut, imageEntry.dataOffset + Math.floor(imageEntry.size / 3));
    const result = await cli(['bundle', 'load', cut], { env, timeoutMs: 300_000 });
    assert.equal(result.exitCode, 4, result.stderr);
    assert.match(result.stderr, /member image\.tar is truncated/);
    assert.equal(await imageId(docker, image), null);
    assert.equal(existsSync(fake.repoDir), false);
  });

  test('up --offline with the image missing lists it and names bundle load, before anything starts', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    const port = await freePort();
    const result = await cli(
      ['up', '--offline', '--engine', 'sim', '--gpus', 'none', '--image', image, '--no-daemon', '--port', String(port)],
      { env, timeoutMs: 120_000 },
    );
    assert.equal(result.exitCode, 4, result.stderr);
    assert.ok(result.stderr.includes(`image ${image} is not on this host`), result.stderr);
    assert.match(result.stderr, /bundle load/);
    const ours = await docker.listContainers({ all: true, filters: { ancestor: [image] } }).catch(() => []);
    assert.equal(ours.length, 0);
  });

  test('a sim bundle loaded on a host without the image lets up --offline serve, then down stops it', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    // The tiny image back from the good bundle (the truncated one took it away), for the tests after this one.
    assert.equal((await cli(['bundle', 'load', vllmBundle], { env, timeoutMs: 300_000 })).exitCode, 0);
    // A bundle for the simulator (no model files) of an image that can serve.
    simBundle = join(dir, 'sim.tar');
    const created = await cli(
      ['bundle', 'create', '--model', MODEL, '--engine', 'sim', '--image', simImage, '--out', simBundle, '--gzip'],
      {
        env,
        timeoutMs: 300_000,
      },
    );
    assert.equal(created.exitCode, 0, created.stderr);
    const listing = (await execa('tar', ['-tf', simBundle])).stdout.split('\n');
    assert.deepEqual(listing, ['manifest.json', 'image.tar.gz']);

    await removeImage(docker, simImage);
    const loaded = await cli(['bundle', 'load', simBundle], { env, timeoutMs: 300_000 });
    assert.equal(loaded.exitCode, 0, loaded.stderr);
    assert.equal(await imageId(docker, simImage), simImageId);

    const port = await freePort();
    const up = await cli(
      ['up', '--offline', '--engine', 'sim', '--gpus', 'none', '--image', simImage, '--no-daemon', '--port', String(port), '--json'],
      { env, timeoutMs: 300_000 },
    );
    assert.equal(up.exitCode, 0, up.stderr);
    const served = JSON.parse(up.stdout) as { baseUrl: string; servedName: string; pulled: boolean; mode: string; apiKeyFile: string };
    assert.equal(served.mode, 'container');
    assert.equal(served.pulled, false);
    // The engine wants its key on /v1/* (the daemon in front has it; here there is none).
    const authorization = `Bearer ${readFileSync(served.apiKeyFile, 'utf8').trim()}`;
    const models = (await (await fetch(`${served.baseUrl}/models`, { headers: { authorization } })).json()) as {
      data: Array<{ id: string }>;
    };
    assert.deepEqual(
      models.data.map((m) => m.id),
      [served.servedName],
    );
    // The engine runs with the hub switched off.
    const [container] = await docker.listContainers({ filters: { ancestor: [simImage] } });
    const info = await docker.getContainer(container!.Id).inspect();
    assert.ok(
      info.Config.Env.includes('HF_HUB_OFFLINE=1') && info.Config.Env.includes('TRANSFORMERS_OFFLINE=1'),
      info.Config.Env.join(' '),
    );

    const down = await cli(['down'], { env, timeoutMs: 120_000 });
    assert.equal(down.exitCode, 0, down.stderr);
    assert.equal((await docker.listContainers({ all: true, filters: { ancestor: [simImage] } })).length, 0);
  });

  test('a snapshot downloaded by revision (no refs/main) is bundled with a refs/main naming it, so the engine finds it offline', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    rmSync(join(fake.repoDir, 'refs', 'main'));
    const out = join(dir, 'by-revision.tar');
    const created = await cli(['bundle', 'create', '--model', MODEL, '--engine', 'vllm', '--image', image, '--out', out, '--json'], {
      env,
      timeoutMs: 300_000,
    });
    assert.equal(created.exitCode, 0, created.stderr);
    const manifest = (JSON.parse(created.stdout) as { manifest: BundleManifest }).manifest;
    const ref = manifest.members.find((m) => m.path.endsWith('/refs/main'));
    assert.equal(ref?.type === 'file' ? ref.sha256 : null, sha256(fake.revision));

    const otherCache = join(dir, 'other-hf');
    const loaded = await cli(['bundle', 'load', out], { env: { ...env, CS_LLM_ENGINE_HF_CACHE_DIR: otherCache }, timeoutMs: 300_000 });
    assert.equal(loaded.exitCode, 0, loaded.stderr);
    assert.equal(readFileSync(join(otherCache, 'hub', 'models--Qwen--Qwen2.5-7B-Instruct-AWQ', 'refs', 'main'), 'utf8'), fake.revision);
    assert.deepEqual(fingerprint(join(otherCache, 'hub', 'models--Qwen--Qwen2.5-7B-Instruct-AWQ')), originalFiles);
  });

  test('a cpu-engine bundle carries the GGUF file and puts it where the cpu engine looks', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    // A user catalog entry for a GGUF file of our own, in the cpu engine's download folder.
    const ggufDir = join(dir, 'gguf');
    const cpuHome = join(dir, 'cpu-home');
    mkdirSync(ggufDir, { recursive: true });
    mkdirSync(cpuHome, { recursive: true });
    const shipped = (JSON.parse(readFileSync(join(ROOT, 'models.json'), 'utf8')) as { models: Array<Record<string, unknown>> }).models.find(
      (m) => (m.engines as string[]).includes('cpu'),
    )!;
    const entry = { ...shipped, id: 'bundle-test-gguf', servedName: 'bundle-test-gguf', gguf: { file: 'bundle-test.gguf' } };
    writeFileSync(join(cpuHome, 'config.json'), JSON.stringify({ models: [entry] }));
    const ggufPath = join(ggufDir, 'bundle-test.gguf');
    copyFileSync(join(ROOT, 'models', (shipped.gguf as { file: string }).file), ggufPath);
    const original = sha256(readFileSync(ggufPath));
    const cpuEnv = { ...env, CS_LLM_HOME: cpuHome, CS_LLM_GGUF_DIR: ggufDir };

    const out = join(dir, 'cpu.tar');
    const created = await cli(['bundle', 'create', '--model', 'bundle-test-gguf', '--engine', 'cpu', '--image', image, '--out', out], {
      env: cpuEnv,
      timeoutMs: 300_000,
    });
    assert.equal(created.exitCode, 0, created.stderr);
    assert.deepEqual((await execa('tar', ['-tf', out])).stdout.split('\n'), ['manifest.json', 'image.tar', 'models/gguf/bundle-test.gguf']);

    rmSync(ggufPath);
    const loaded = await cli(['bundle', 'load', out, '--json'], { env: cpuEnv, timeoutMs: 300_000 });
    assert.equal(loaded.exitCode, 0, loaded.stderr);
    assert.deepEqual((JSON.parse(loaded.stdout) as { files: { written: number } }).files.written, 1);
    assert.equal(sha256(readFileSync(ggufPath)), original);
    assert.deepEqual(readdirNames(ggufDir), ['bundle-test.gguf']);
    const again = await cli(['bundle', 'load', out, '--json'], { env: cpuEnv, timeoutMs: 300_000 });
    assert.equal((JSON.parse(again.stdout) as { changed: boolean }).changed, false);
  });

  test('a cancelled create leaves no file behind, not even a partial one', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    const out = join(dir, 'cancelled', 'never.tar');
    mkdirSync(join(dir, 'cancelled'));
    const { config } = loadConfig({ env: { ...process.env, ...env } });
    await assert.rejects(
      createBundle(
        { model: MODEL, engine: 'sim', image, out, config, env: { ...process.env, ...env }, signal: AbortSignal.abort() },
        { docker },
      ),
      /bundle create cancelled/,
    );
    assert.deepEqual(readdirNames(join(dir, 'cancelled')), []);
  });

  test('an image dockerd rejects inside a 200 response fails the load, and the model files are not put in place', async (t) => {
    if (!docker) return t.skip('no Docker engine');
    // A well-formed bundle whose image member is a tar that is not an image: only the stream says so.
    const bad = join(dir, 'bad-image.tar');
    const notAnImage = Buffer.concat([
      tarHeader({ path: 'hello.txt', type: 'file', size: 5, mode: 0o644, mtime: 0 }),
      Buffer.from('hello'),
      Buffer.alloc(507),
      Buffer.alloc(1024),
    ]);
    const blob = randomBytes(1000);
    await writeHandMadeBundle(bad, [
      { path: 'image.tar', data: notAnImage },
      { path: `${TINY_PREFIX}/blobs/${sha256(blob)}`, data: blob },
    ]);

    const { config } = loadConfig({ env: { ...process.env, ...env } });
    await assert.rejects(loadBundle({ file: bad, config, env: { ...process.env, ...env } }, { docker }), (err: Error) => {
      assert.ok(!(err instanceof BundleIntegrityError), 'the bundle itself verifies');
      assert.match(err.message, /loading the image into Docker failed/);
      return true;
    });
    assert.equal(existsSync(join(cache, 'hub', 'models--Org--Tiny')), false);
  });
});

function readdirNames(path: string): string[] {
  return existsSync(path) ? readdirSync(path).sort() : [];
}
