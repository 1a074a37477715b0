import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { execa } from 'execa';
import { entryArgs, ROOT } from '../helpers/cli.js';

const SIM_MAIN = entryArgs('sim/main');
const CLI_MAIN = entryArgs('cli/main');
const OOM =
  'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 23.55 GiB of which 1.02 GiB is free.';

/** Spawns a long-running process (node with these arguments), killed when the test ends; lines() waits for a stdout line matching re. */
function launch(t: TestContext, args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  t.after(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  const seen: string[] = [];
  const waiters: Array<{ re: RegExp; resolve: (m: RegExpExecArray) => void }> = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    seen.push(line);
    for (const waiter of [...waiters]) {
      const match = waiter.re.exec(line);
      if (match) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(match);
      }
    }
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const line = (re: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      for (const l of seen) {
        const match = re.exec(l);
        if (match) return resolve(match);
      }
      waiters.push({ re, resolve });
      void exited.then(([code]) =>
        reject(new Error(`process exited (${code}) before printing ${re}; stdout:\n${seen.join('\n')}\nstderr:\n${stderr}`)),
      );
    });
  return { child: child as ChildProcess, exited, line, seen, stderr: () => stderr };
}

test('--crash-at-start prints vLLM-like start-up lines, then the given line on stderr, and exits 1 without listening', async () => {
  const result = await execa(
    process.execPath,
    [...SIM_MAIN, '--model', 'Qwen/Qwen2.5-32B-Instruct-AWQ', '--port', '0', '--crash-at-start', OOM],
    {
      cwd: ROOT,
      reject: false,
      timeout: 60_000,
    },
  );
  assert.equal(result.exitCode, 1);
  assert.match(result.stdout, /Starting to load model Qwen\/Qwen2\.5-32B-Instruct-AWQ/);
  assert.doesNotMatch(result.stdout, /Uvicorn running/);
  const stderrLines = result.stderr.trimEnd().split('\n');
  assert.equal(stderrLines[stderrLines.length - 1], OOM);
  assert.match(result.stderr, /EngineCore failed to start/);
});

test('SIM_CRASH_AT_START does the same from the environment, as a container spec would set it', async () => {
  const result = await execa(process.execPath, SIM_MAIN, {
    cwd: ROOT,
    reject: false,
    timeout: 60_000,
    env: { SIM_CRASH_AT_START: OOM },
  });
  assert.equal(result.exitCode, 1);
  assert.ok(result.stderr.trimEnd().endsWith(OOM));
});

test(
  'the standalone entry takes a vLLM command line, serves the openai client, and stops cleanly on SIGTERM',
  { timeout: 90_000 },
  async (t) => {
    const sim = launch(
      t,
      [
        ...SIM_MAIN,
        '--model',
        'Qwen/Qwen2.5-7B-Instruct-AWQ',
        '--served-model-name',
        'qwen7',
        '--port',
        '0',
        '--gpu-memory-utilization',
        '0.9',
        '--enable-auto-tool-choice',
        '--tool-call-parser',
        'hermes',
      ],
      {
        SIM_TOKENS_PER_SECOND: '0',
      },
    );
    const [, url] = await sim.line(/^INFO: {5}Uvicorn running on (http:\/\/127\.0\.0\.1:\d+) \(Press CTRL\+C to quit\)$/);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'qwen7', messages: [{ role: 'user', content: 'Hello' }] });
    assert.match(completion.choices[0]!.message.content!, /^Turn 1\./);
    await sim.line(/"POST \/v1\/chat\/completions HTTP\/1\.1" 200 OK$/);
    assert.ok(sim.seen.some((l) => l.includes('ignores these vLLM flags: --enable-auto-tool-choice --tool-call-parser')));

    sim.child.kill('SIGTERM');
    const [code] = await sim.exited;
    assert.equal(code, 0);
  },
);

test('cs-llm sim --port 0 prints the URL it listens on and stops on SIGINT', { timeout: 90_000 }, async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-sim-'));
  const sim = launch(t, [...CLI_MAIN, 'sim', '--port', '0', '--served-model-name', 'demo', '--disable-uvicorn-access-log'], {
    CS_LLM_HOME: home,
  });
  const [, url] = await sim.line(/^listening on (http:\/\/127\.0\.0\.1:\d+)$/);
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  let text = '';
  for await (const chunk of await client.chat.completions.create({
    model: 'demo',
    messages: [{ role: 'user', content: 'count to 3' }],
    stream: true,
  })) {
    text += chunk.choices[0]?.delta.content ?? '';
  }
  assert.equal(text, '1 2 3');

  sim.child.kill('SIGINT');
  const [code] = await sim.exited;
  assert.equal(code, 0);
  assert.ok(sim.seen.includes('simulator stopped (SIGINT)'));
  assert.ok(!sim.seen.some((l) => l.includes('"POST')), 'no access lines with --disable-uvicorn-access-log');
});

test('cs-llm sim refuses a bad knob with the flag named and the next step, exit code 2', async () => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-sim-'));
  const result = await execa(process.execPath, [...CLI_MAIN, 'sim', '--hang-rate', '2'], {
    cwd: ROOT,
    reject: false,
    timeout: 60_000,
    env: { CS_LLM_HOME: home, NO_COLOR: '1' },
  });
  assert.equal(result.exitCode, 2);
  assert.match(result.stderr, /--hang-rate must be a share between 0 and 1, got "2"/);
  assert.match(result.stderr, /cs-llm sim --help/);
  assert.doesNotMatch(result.stderr, /at .*\.ts:\d+/, 'no stack trace');
});

test('cs-llm sim on a port in use says so and suggests another port', { timeout: 90_000 }, async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-sim-'));
  const first = launch(t, [...CLI_MAIN, 'sim', '--port', '0'], { CS_LLM_HOME: home });
  const [, port] = await first.line(/^listening on http:\/\/127\.0\.0\.1:(\d+)$/);
  const result = await execa(process.execPath, [...CLI_MAIN, 'sim', '--port', port!], {
    cwd: ROOT,
    reject: false,
    timeout: 60_000,
    env: { CS_LLM_HOME: home, NO_COLOR: '1' },
  });
  assert.equal(result.exitCode, 4);
  assert.match(result.stderr, /address is already in use/);
  assert.match(result.stderr, /--port/);
});
