import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execa } from 'execa';
import { loadConfig } from '../../../src/core/config.js';
import { startDaemon, type Daemon } from '../../../src/daemon/server.js';
import { startSimulator } from '../../../src/sim/server.js';
import { entryArgs, ROOT, runCli } from '../../helpers/cli.js';
import { CONTROL, startHostileEngine } from '../../helpers/hostile-engine.js';

const LOOP_SMI_DIR = join(ROOT, 'test', 'fixtures', 'nvidia-smi', 'loop');

/** The simulator behind a daemon whose GPU sampler finds the looping fake nvidia-smi first on its PATH. */
async function startStack(t: TestContext, gpu: boolean): Promise<{ daemon: Daemon; home: string }> {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-dashboard-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const sim = await startSimulator({ port: 0, accessLog: false, tokensPerSecond: 500 });
  t.after(() => sim.close());
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: { daemon: { upstream: sim.url } } });
  const PATH = gpu ? `${LOOP_SMI_DIR}:${process.env.PATH}` : '/nonexistent-bin';
  const daemon = await startDaemon({ config, paths, port: 0, metrics: { gpu: { env: { ...process.env, PATH }, intervalMs: 200 } } });
  t.after(() => daemon.close('test over'));
  return { daemon, home };
}

/** A few chat requests a second until the test ends. */
function lightLoad(t: TestContext, daemon: Daemon): void {
  let stopped = false;
  t.after(() => {
    stopped = true;
  });
  const body = JSON.stringify({ model: 'cs-llm-sim', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] });
  void (async () => {
    while (!stopped) {
      try {
        const res = await fetch(`${daemon.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await res.text();
      } catch {
        // the daemon is closing as the test ends
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  })();
}

/** key=value pairs; a value with spaces is a JSON string (logfmt style). */
function pairsOf(line: string): Record<string, string> {
  const pairs: Record<string, string> = {};
  for (const m of line.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S+)/g))
    pairs[m[1]!] = m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!;
  return pairs;
}

/** A port nothing listens on: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

test('without a terminal the dashboard prints one key=value line per interval', async (t) => {
  const { daemon, home } = await startStack(t, false);
  lightLoad(t, daemon);
  const result = await runCli(['dashboard', '--url', daemon.url, '--interval', '300ms', '--count', '3'], { env: { CS_LLM_HOME: home } });
  assert.equal(result.exitCode, 0, String(result.stderr));
  const lines = String(result.stdout).trim().split('\n');
  assert.equal(lines.length, 3);
  const last = pairsOf(lines[2]!);
  assert.equal(last.daemon, 'up');
  assert.equal(last.engine, 'up');
  assert.equal(last.model, 'cs-llm-sim');
  assert.match(last.rps!, /^\d/);
  assert.equal(
    Object.keys(last).some((k) => k.startsWith('gpu')),
    false,
    'no GPU keys without GPU figures',
  );
});

test('a daemon that is not there is reported in the lines, not as a crash', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-dashboard-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const result = await runCli(['dashboard', '--url', `http://127.0.0.1:${await closedPort()}`, '--interval', '200ms', '--count', '2'], {
    env: { CS_LLM_HOME: home },
  });
  assert.equal(result.exitCode, 0, String(result.stderr));
  const pairs = pairsOf(String(result.stdout).trim().split('\n')[1]!);
  assert.equal(pairs.daemon, 'unreachable');
  assert.match(pairs.problem!, /ECONNREFUSED/);
});

test('an admin API key is sent but never printed; a missing one, or a tenant key, is named as the problem; tenants get their figures', async (t) => {
  const { daemon, home } = await startStack(t, false);
  const { key: admin } = await daemon.store.keys.create('dashboard', Date.now(), { admin: true });
  const { key: shop } = await daemon.store.keys.create('shop-a app', Date.now(), { tenant: 'shop-a' });
  const without = await runCli(['dashboard', '--url', daemon.url, '--interval', '200ms', '--count', '1'], { env: { CS_LLM_HOME: home } });
  assert.match(String(without.stdout), /daemon=unreachable .*--api-key or set CS_LLM_API_KEY/);
  const tenantKey = await runCli(['dashboard', '--url', daemon.url, '--interval', '200ms', '--count', '1'], {
    env: { CS_LLM_HOME: home, CS_LLM_API_KEY: shop },
  });
  assert.match(String(tenantKey.stdout), /daemon=unreachable .*needs an admin key/);
  const res = await fetch(`${daemon.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${shop}` },
    body: JSON.stringify({ model: 'cs-llm-sim', max_tokens: 8, messages: [{ role: 'user', content: 'hello' }] }),
  });
  assert.equal(res.status, 200, await res.text());
  const withKey = await runCli(['dashboard', '--url', daemon.url, '--interval', '200ms', '--count', '2'], {
    env: { CS_LLM_HOME: home, CS_LLM_API_KEY: admin },
  });
  const last = pairsOf(String(withKey.stdout).trim().split('\n')[1]!);
  assert.equal(last.daemon, 'up');
  assert.equal(last['tenant_shop-a_quota_429s'], '0');
  assert.match(last['tenant_shop-a_rps']!, /^\d/);
  assert.doesNotMatch(`${String(withKey.stdout)}${String(withKey.stderr)}`, new RegExp(admin));
});

test('a malformed --interval is a usage error with the next step', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-dashboard-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const result = await runCli(['dashboard', '--interval', 'soon'], { env: { CS_LLM_HOME: home } });
  assert.equal(result.exitCode, 2);
  assert.match(String(result.stderr), /--interval "soon" is not a duration/);
  assert.match(String(result.stderr), /500ms, 1s/);
  assert.doesNotMatch(String(result.stderr), /\n\s+at /, 'no stack trace');
});

async function requireTmux(t: TestContext): Promise<boolean> {
  const found = await execa('tmux', ['-V'], { reject: false });
  if (found.exitCode === 0) return true;
  if (process.env.CI === 'true') throw new Error('CI=true but tmux is not installed (apt-get install tmux)');
  t.skip('tmux is not installed');
  return false;
}

test('in a terminal the live dashboard shows requests rising and a VRAM bar, redraws on resize, and q quits with exit 0', async (t) => {
  if (!(await requireTmux(t))) return;
  const { daemon, home } = await startStack(t, true);
  lightLoad(t, daemon);
  const socket = `cs-llm-test-${process.pid}`;
  const tmux = (...args: string[]) => execa('tmux', ['-L', socket, ...args], { reject: false });
  t.after(async () => {
    await tmux('kill-server');
  });
  const exitFile = join(home, 'dashboard-exit');
  // As on an operator's terminal: Ink draws only a final frame when CI is set (is-in-ci), and the tmux
  // server inherits this test's environment, CI=true included under .ci/run.
  const command = `env -u CI -u CONTINUOUS_INTEGRATION ${[process.execPath, ...entryArgs('cli/main')].join(' ')} dashboard --url ${daemon.url} --interval 300ms; echo $? > ${exitFile}`;
  const started = await tmux(
    'new-session',
    '-d',
    '-x',
    '120',
    '-y',
    '40',
    '-e',
    `CS_LLM_HOME=${home}`,
    '-e',
    'TERM=xterm-256color',
    '-c',
    ROOT,
    `sh -c '${command}'`,
  );
  assert.equal(started.exitCode, 0, started.stderr);

  let screen = '';
  let rps = 0;
  for (let i = 0; i < 300 && !(rps > 0 && /VRAM █+░*/.test(screen)); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    screen = (await tmux('capture-pane', '-p')).stdout;
    rps = Number(/requests\s+([\d.]+)\/s/.exec(screen)?.[1] ?? 0);
  }
  assert.ok(rps > 0, `requests per second above zero; screen:\n${screen}`);
  assert.match(screen, /GPU 0 +GeForce RTX 4090 {2}VRAM █+░+ 18\.3\/24\.0 GiB/);
  assert.match(screen, /connected to http:\/\/127\.0\.0\.1/);
  const barWidth = (text: string) => /VRAM (█+░*)/.exec(text)?.[1]?.length ?? 0;
  const wide = barWidth(screen);

  // A narrower terminal: the next frames draw shorter bars.
  await tmux('resize-window', '-x', '100', '-y', '40');
  // A capture can fall mid-redraw (the header drawn, the bars not yet): wait for a frame with a shorter bar.
  const redrawn = () => barWidth(screen) > 0 && barWidth(screen) < wide;
  for (let i = 0; i < 100 && !redrawn(); i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    screen = (await tmux('capture-pane', '-p')).stdout;
  }
  assert.ok(redrawn(), `redrawn for 100 columns: ${barWidth(screen)} < ${wide}\n${screen}`);

  await tmux('send-keys', 'q');
  for (let i = 0; i < 100 && !existsSync(exitFile); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(readFileSync(exitFile, 'utf8').trim(), '0', 'q ends the dashboard with exit code 0');
});

test("a model id with escape sequences from the engine reaches the dashboard's lines without them", async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-dashboard-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const engine = await startHostileEngine(t);
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: { daemon: { upstream: engine } } });
  const daemon = await startDaemon({ config, paths, port: 0, metrics: { gpu: false } });
  t.after(() => daemon.close('test over'));
  // The daemon learns the model from the engine's /v1/models; ask until its metrics name it.
  for (let i = 0; i < 100 && !(await (await fetch(`${daemon.url}/metrics`)).text()).includes('evil-model'); i++)
    await new Promise((r) => setTimeout(r, 50));
  const result = await runCli(['dashboard', '--url', daemon.url, '--interval', '200ms', '--count', '2'], { env: { CS_LLM_HOME: home } });
  assert.equal(result.exitCode, 0, String(result.stderr));
  assert.doesNotMatch(String(result.stdout), CONTROL);
  assert.match(String(result.stdout), /model=\]0;pwnedevil-model31m /);
});
