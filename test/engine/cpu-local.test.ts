import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../helpers/cli.js';
import { requireCpuRuntime } from '../helpers/cpu-runtime.js';
import { freePort } from '../helpers/ports.js';

test(
  'without a Docker engine, up --engine cpu runs the engine as a local process that serves, and down stops it',
  { timeout: 180_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const home = mkdtempSync(join(tmpdir(), 'cs-llm-cpu-local-'));
    const env = { CS_LLM_HOME: home, DOCKER_HOST: 'unix:///nonexistent/docker.sock', CS_LLM_CPU_THREADS: '1' };
    t.after(async () => {
      await runCli(['down'], { env });
      rmSync(home, { recursive: true, force: true });
    });
    const port = await freePort();
    const up = await runCli(['up', '--engine', 'cpu', '--model', 'tiny-memory', '--port', String(port), '--detach', '--no-daemon'], {
      env,
      timeoutMs: 120_000,
    });
    assert.equal(up.exitCode, 0, String(up.stderr));
    assert.match(String(up.stderr) + String(up.stdout), /no Docker engine .*running the cpu engine as a local process/);
    assert.match(String(up.stdout), /engine serving: tiny-memory on the cpu engine \(local process \d+\)/);
    const key = readFileSync(join(home, 'state', 'engine-api-key'), 'utf8').trim();
    const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
      body: JSON.stringify({
        model: 'tiny-memory',
        messages: [
          { role: 'user', content: 'My name is Grace.' },
          { role: 'assistant', content: 'Nice to meet you, Grace!' },
          { role: 'user', content: 'What is my name?' },
        ],
        temperature: 0,
      }),
    });
    const body = (await res.json()) as { choices: Array<{ message: { content: string } }> };
    assert.match(body.choices[0]!.message.content, /Grace/);
    const down = await runCli(['down'], { env });
    assert.equal(down.exitCode, 0);
    await assert.rejects(fetch(`http://127.0.0.1:${port}/health`));
  },
);
