import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { loadConfig } from '../../src/core/config.js';
import { readEngineKey } from '../../src/engine/engine-key.js';
import { engineDown } from '../../src/engine/manage.js';
import { buildLocalSimImage } from '../../src/engine/sim-image.js';
import { up } from '../../src/engine/up.js';
import { distIsFresh, ROOT } from '../helpers/cli.js';
import { requireDocker } from '../helpers/docker.js';
import { freePort } from '../helpers/ports.js';

test('the simulator image built from this install (no registry, no base image) runs as the engine', async (t) => {
  const docker = await requireDocker(t);
  if (!docker) return;
  const work = mkdtempSync(join(tmpdir(), 'cs-llm-simimg-'));
  const home = join(work, 'home');
  const env = { ...process.env, CS_LLM_HOME: home };
  const image = `cs-llm-test/sim-local:${process.pid}`;
  t.after(async () => {
    await engineDown({ paths: loadConfig({ env }).paths, env, docker, purge: false });
    await docker
      .getImage(image)
      .remove()
      .catch(() => undefined);
    rmSync(work, { recursive: true, force: true });
  });
  // What an install carries as dist/sim (and the dist/openai-server it imports): the checkout's dist/ when it
  // is up to date with the sources (CI builds before it tests), else compiled here from source.
  const simDir = distIsFresh() ? join(ROOT, 'dist', 'sim') : join(work, 'dist', 'sim');
  if (!distIsFresh()) await compileSimulator(join(work, 'dist'));
  assert.ok(existsSync(join(simDir, 'main.js')), 'the simulator compiled');

  await buildLocalSimImage(docker, image, simDir);
  const info = await docker.getImage(image).inspect();
  assert.deepEqual(info.Config.Entrypoint, ['/usr/local/bin/node', '/app/dist/sim/main.js']);

  const loaded = loadConfig({ env, flags: { engine: { kind: 'sim', image, pullPolicy: 'never', port: await freePort() } } });
  const result = await up({ engine: loaded.config.engine, paths: loaded.paths, env });
  assert.equal(result.image, image);
  assert.equal(result.pulled, false);
  const authorization = `Bearer ${readEngineKey(loaded.paths.stateDir)}`;
  const models = (await (await fetch(`${result.baseUrl}/models`, { headers: { authorization } })).json()) as {
    data: Array<{ id: string }>;
  };
  assert.deepEqual(
    models.data.map((m) => m.id),
    [result.servedName],
  );
});

async function compileSimulator(outDir: string): Promise<void> {
  await execa(
    'npx',
    [
      'tsc',
      '--strict',
      '--outDir',
      outDir,
      '--rootDir',
      'src',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
      '--skipLibCheck',
      '--types',
      'node',
      'src/sim/main.ts',
    ],
    { cwd: ROOT, reject: false, timeout: 120_000 },
  );
}
