/*
 * `cs-llm up --engine cpu` against the real dockerd and the loopback registry, with the image that
 * scripts/ci/build-cpu-image.sh pushed, through the CLI as a user runs it. Each test has its own
 * CS_LLM_HOME and ports, and runs `down` in t.after.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import OpenAI from 'openai';
import { listEngineContainers } from '../../src/engine/containers.js';
import { instanceIdFor, LABEL } from '../../src/engine/spec.js';
import { runCli } from '../helpers/cli.js';
import { requireDocker } from '../helpers/docker.js';
import { requireCpuRuntime } from '../helpers/cpu-runtime.js';
import { freePort } from '../helpers/ports.js';

const CPU_IMAGE = process.env.CS_LLM_CPU_IMAGE ?? '127.0.0.1:5000/cs-llm/cpu:test';

async function setup(t: TestContext) {
  const docker = await requireDocker(t);
  if (!docker || !requireCpuRuntime(t)) return null;
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-cpu-up-'));
  // No nvidia-smi on this PATH: the host looks GPU-less even where a fake one is installed for other tests.
  const env = {
    CS_LLM_HOME: home,
    CS_LLM_CPU_THREADS: '1',
    CS_LLM_DAEMON_PORT: String(await freePort()),
    PATH: '/usr/local/bin:/usr/bin:/bin',
    HOME: process.env.HOME,
  };
  const cli = (args: string[]) => runCli(args, { env, timeoutMs: 180_000 });
  t.after(async () => {
    await cli(['down']);
    rmSync(home, { recursive: true, force: true });
  });
  return { docker, home, env, cli, ours: () => listEngineContainers(docker, instanceIdFor(home)) };
}

test(
  'up --engine cpu pulls the image, serves the tiny model from a read-only mount, remembers a session through the daemon, and down leaves nothing',
  { timeout: 300_000 },
  async (t) => {
    const s = await setup(t);
    if (!s) return;
    await s.docker
      .getImage(CPU_IMAGE)
      .remove()
      .catch(() => undefined); // a real pull
    const port = await freePort();
    const run = await s.cli(['up', '--engine', 'cpu', '--image', CPU_IMAGE, '--port', String(port), '--detach']);
    assert.equal(run.exitCode, 0, String(run.stderr) + String(run.stdout));
    const out = `${String(run.stdout)}\n${String(run.stderr)}`;
    assert.match(out, /tiny demo model/);
    assert.match(out, /--model \/path\/to\/model\.gguf/);
    assert.match(out, /pull/i);
    assert.match(out, /engine serving: tiny-memory on the cpu engine \(container /);

    const [info] = await s.ours();
    assert.ok(info, 'an engine container');
    const inspect = await s.docker.getContainer(info.Id).inspect();
    assert.equal(inspect.Config.Labels[LABEL.engine], 'cpu');
    assert.deepEqual(inspect.HostConfig.Binds, [`${join(process.cwd(), 'models', 'tiny-memory.gguf')}:/models/tiny-memory.gguf:ro`]);
    assert.equal(inspect.HostConfig.NanoCpus, 1e9);
    const cmd = inspect.Config.Cmd ?? [];
    assert.equal(cmd[cmd.indexOf('--threads') + 1], '1');
    assert.equal(cmd[cmd.indexOf('--model') + 1], '/models/tiny-memory.gguf');
    assert.deepEqual(inspect.HostConfig.PortBindings?.['8000/tcp'], [{ HostIp: '127.0.0.1', HostPort: String(port) }]);

    const chat = new OpenAI({
      baseURL: `http://127.0.0.1:${s.env.CS_LLM_DAEMON_PORT}/v1`,
      apiKey: 'unused',
      maxRetries: 0,
      timeout: 60_000,
      defaultHeaders: { 'X-Session-Id': 'docker-grace' },
    });
    await chat.chat.completions.create({
      model: 'tiny-memory',
      messages: [{ role: 'user', content: 'My name is Grace.' }],
      temperature: 0,
    });
    const reply = await chat.chat.completions.create({
      model: 'tiny-memory',
      messages: [{ role: 'user', content: 'What is my name?' }],
      temperature: 0,
    });
    assert.match(reply.choices[0]!.message.content ?? '', /Grace/);

    const down = await s.cli(['down']);
    assert.equal(down.exitCode, 0, String(down.stderr));
    assert.deepEqual(await s.ours(), []);
  },
);

test('a missing model file is refused by name before anything is pulled or created', { timeout: 120_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  const run = await s.cli([
    'up',
    '--engine',
    'cpu',
    '--image',
    CPU_IMAGE,
    '--model',
    '/nonexistent/models/qwen.gguf',
    '--port',
    String(await freePort()),
    '--detach',
    '--no-daemon',
  ]);
  assert.notEqual(run.exitCode, 0);
  assert.match(String(run.stderr), /model file not found: \/nonexistent\/models\/qwen\.gguf/);
  assert.doesNotMatch(String(run.stderr), /\n\s+at /);
  assert.deepEqual(await s.ours(), []);
  const fake = join(s.home, 'safetensors-renamed.gguf');
  writeFileSync(fake, '{"not": "a model"}');
  const notGguf = await s.cli(['up', '--engine', 'cpu', '--image', CPU_IMAGE, '--model', fake, '--detach', '--no-daemon']);
  assert.notEqual(notGguf.exitCode, 0);
  assert.match(
    String(notGguf.stderr),
    /model file is not GGUF: .*safetensors-renamed\.gguf does not start with "GGUF" \(its first bytes: 7b226e6f\)/,
  );
  const tooLong = await s.cli(['up', '--engine', 'cpu', '--image', CPU_IMAGE, '--context', '4096', '--detach', '--no-daemon']);
  assert.notEqual(tooLong.exitCode, 0);
  assert.match(String(tooLong.stderr), /--context 4096 is larger than the model's context length 512/);
  assert.deepEqual(await s.ours(), []);
});

test('--engine auto on a machine without an NVIDIA GPU chooses cpu and says why in one line', { timeout: 300_000 }, async (t) => {
  const s = await setup(t);
  if (!s) return;
  // No nvidia-smi anywhere (an empty PATH), as on a machine without an NVIDIA driver.
  const run = await runCli(
    ['up', '--engine', 'auto', '--image', CPU_IMAGE, '--model', 'tiny-chat', '--port', String(await freePort()), '--detach', '--no-daemon'],
    {
      env: { ...s.env, PATH: '/nonexistent-bin' },
      timeoutMs: 180_000,
    },
  );
  assert.equal(run.exitCode, 0, String(run.stderr) + String(run.stdout));
  const out = `${String(run.stdout)}\n${String(run.stderr)}`;
  assert.match(out, /^.*engine auto: cpu, because there is no usable NVIDIA GPU \(nvidia-smi was not found.*\)$/m);
  assert.match(out, /engine serving: tiny-chat on the cpu engine/);
  const [info] = await s.ours();
  assert.equal(info?.Labels[LABEL.engine], 'cpu');
});
