import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, readFileSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { request } from 'undici';
import OpenAI from 'openai';
import { resolvePaths } from '../../src/core/paths.js';
import { processStamp } from '../../src/core/process-identity.js';
import { daemonStatus, readDaemonState, writeDaemonState } from '../../src/daemon/lifecycle.js';
import { openStore } from '../../src/store/store.js';
import { startSimulator } from '../../src/sim/server.js';
import { entryArgs, ROOT } from '../helpers/cli.js';
import { cli } from './harness.js';

function home(): string {
  return mkdtempSync(join(tmpdir(), 'cs-llm-lifecycle-'));
}

test('daemon start runs it in the background, status finds it, stop ends it and the turns stay stored', async (t) => {
  const sim = await startSimulator({ port: 0 });
  t.after(() => sim.close());
  const dir = home();
  const env = { CS_LLM_HOME: dir };
  t.after(() => cli(['daemon', 'stop'], { env }));

  const started = await cli(['daemon', 'start', '--port', '0', '--upstream', sim.url], { env });
  assert.equal(started.exitCode, 0, started.stderr);
  const url = /url=(\S+)/.exec(started.stdout)?.[1];
  assert.ok(url, started.stdout);

  const status = await cli(['daemon', 'status', '--json'], { env });
  const parsed = JSON.parse(status.stdout) as { running: boolean; url: string; healthy: boolean; pid: number };
  assert.equal(parsed.running, true);
  assert.equal(parsed.healthy, true);
  assert.equal(parsed.url, url);

  const again = await cli(['daemon', 'start', '--port', '0', '--upstream', sim.url], { env });
  assert.equal(again.exitCode, 8, 'a second start is a conflict');
  assert.match(again.stderr, /already running/);

  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'none', maxRetries: 0, defaultHeaders: { 'X-Session-Id': 'bg' } });
  await client.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'my name is Ada' }] });

  const stopped = await cli(['daemon', 'stop'], { env });
  assert.equal(stopped.exitCode, 0, stopped.stderr);
  assert.match(stopped.stdout, /daemon stopped/);
  assert.equal(readDaemonState(resolvePaths(env)), null);
  assert.equal((await daemonStatus(resolvePaths(env))).running, false);
  const log = readFileSync(resolvePaths(env).daemonLog, 'utf8');
  assert.match(log, /listening on/);
  assert.match(log, /stopped \(SIGTERM\)/);

  const store = await openStore({ file: resolvePaths(env).dbFile });
  t.after(() => store.close());
  assert.equal((await store.sessions.get('default', 'bg', Date.now()))?.messages.length, 2);
});

test('SIGTERM during a streamed turn lets it finish, stores it, and the process exits cleanly', async (t) => {
  // About 3 s of stream: the signal must reach the daemon while the turn is still in flight, also on a busy
  // machine (at 100 tokens/s the whole reply was sometimes through before the daemon saw the signal).
  const sim = await startSimulator({ port: 0, tokensPerSecond: 20 });
  t.after(() => sim.close());
  const dir = home();
  const child = execa(process.execPath, [...entryArgs('cli/main'), 'daemon', 'run', '--port', '0', '--upstream', sim.url], {
    cwd: ROOT,
    env: { CS_LLM_HOME: dir, NO_COLOR: '1' },
    reject: false,
  });
  t.after(() => {
    child.kill('SIGKILL');
  });
  const paths = resolvePaths({ CS_LLM_HOME: dir });
  let state = readDaemonState(paths);
  while (!state) {
    assert.equal(child.exitCode, null, 'the daemon exited before it listened');
    await new Promise((r) => setTimeout(r, 50));
    state = readDaemonState(paths);
  }
  const res = await request(`${state.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'drain' },
    body: JSON.stringify({ model: 'cs-llm-sim', stream: true, messages: [{ role: 'user', content: 'count to 60' }] }),
  });
  const chunks = res.body[Symbol.asyncIterator]();
  let received = ((await chunks.next()).value as Buffer).toString();
  child.kill('SIGTERM');
  for (let next = await chunks.next(); !next.done; next = await chunks.next()) received += (next.value as Buffer).toString();
  assert.ok(received.trimEnd().endsWith('data: [DONE]'), 'the in-flight stream completed');
  assert.ok(received.includes('"content":" 60"'), 'the whole count arrived');

  const result = await child;
  assert.equal(result.exitCode, 0, result.stderr);
  assert.match(result.stderr, /shutting down: SIGTERM; 1 request\(s\) in flight/);
  assert.match(result.stderr, /stopped \(SIGTERM\)/);
  assert.equal(existsSync(paths.daemonStateFile), false);
  const store = await openStore({ file: paths.dbFile });
  t.after(() => store.close());
  assert.equal((await store.sessions.get('default', 'drain', Date.now()))?.messages.length, 2);
});

test('a state file whose pid now belongs to another process: status says not running, stop leaves that process alone, start starts', async (t) => {
  const sim = await startSimulator({ port: 0 });
  t.after(() => sim.close());
  // What a crash or a reboot leaves: the daemon's pid is held by an unrelated process now.
  const stranger = spawn('sleep', ['300'], { stdio: 'ignore' });
  await once(stranger, 'spawn');
  t.after(() => stranger.kill('SIGKILL'));
  const dir = home();
  const env = { CS_LLM_HOME: dir };
  const paths = resolvePaths(env);
  t.after(() => cli(['daemon', 'stop'], { env }));
  mkdirSync(paths.stateDir, { recursive: true });
  const stamp = processStamp(stranger.pid!)!;
  const stale = [
    // written by this version: the start time no longer matches
    {
      pid: stranger.pid,
      url: 'http://127.0.0.1:9',
      startedAt: '2026-01-01T00:00:00.000Z',
      startTicks: String(Number(stamp.startTicks) - 7),
      bootId: stamp.bootId,
    },
    // written before start times were kept: the command line is not a daemon's
    { pid: stranger.pid, url: 'http://127.0.0.1:9', startedAt: '2026-01-01T00:00:00.000Z' },
  ];
  for (const state of stale) {
    writeFileSync(paths.daemonStateFile, JSON.stringify(state));
    const status = await cli(['daemon', 'status', '--json'], { env });
    const parsed = JSON.parse(status.stdout) as { running: boolean; stale: boolean; staleReason: string };
    assert.equal(parsed.running, false, status.stdout);
    assert.equal(parsed.staleReason, 'pid-reused');
    assert.equal(existsSync(paths.daemonStateFile), false, 'the stale file is removed');

    writeFileSync(paths.daemonStateFile, JSON.stringify(state));
    const stopped = await cli(['daemon', 'stop'], { env });
    assert.equal(stopped.exitCode, 0, stopped.stderr);
    assert.match(stopped.stdout, /daemon not running/);
    assert.equal(stranger.exitCode, null, 'the unrelated process was not signalled');
    assert.equal(stranger.signalCode, null);
  }

  writeFileSync(paths.daemonStateFile, JSON.stringify(stale[0]));
  const started = await cli(['daemon', 'start', '--port', '0', '--upstream', sim.url], { env });
  assert.equal(started.exitCode, 0, started.stderr);
  const state = readDaemonState(paths);
  assert.notEqual(state?.pid, stranger.pid);
  assert.deepEqual(
    processStamp(state!.pid),
    { startTicks: state!.startTicks, bootId: state!.bootId },
    'the new state file keeps its start time',
  );
  const stopped = await cli(['daemon', 'stop'], { env });
  assert.match(stopped.stdout, /daemon stopped/);
  assert.equal(stranger.exitCode, null);
});

test('a damaged database file stops the daemon at start with the file named, and the file is kept', async () => {
  const dir = home();
  const paths = resolvePaths({ CS_LLM_HOME: dir });
  const garbage = 'definitely not sqlite\n'.repeat(200);
  const { mkdirSync } = await import('node:fs');
  mkdirSync(paths.stateDir, { recursive: true });
  writeFileSync(paths.dbFile, garbage);
  const result = await cli(['daemon', 'run', '--port', '0'], { env: { CS_LLM_HOME: dir } });
  assert.equal(result.exitCode, 4);
  assert.ok(result.stderr.includes(paths.dbFile), result.stderr);
  assert.match(result.stderr, /next: .*move the file aside/);
  assert.doesNotMatch(result.stderr, /\n\s+at /);
  assert.equal(readFileSync(paths.dbFile, 'utf8'), garbage);
});

test('daemon run refuses a non-loopback address until a key exists', async () => {
  const dir = home();
  const result = await cli(['daemon', 'run', '--host', '0.0.0.0', '--port', '0'], { env: { CS_LLM_HOME: dir } });
  assert.equal(result.exitCode, 3);
  assert.match(result.stderr, /refusing to listen on 0\.0\.0\.0 without API keys/);
  assert.match(result.stderr, /next: Create a key first/);
});

test('the state directory the daemon state file creates is 0700 and the file 0600, whatever the umask', () => {
  const previous = process.umask(0o022);
  try {
    const paths = resolvePaths({ CS_LLM_HOME: home() });
    writeDaemonState(paths, { pid: process.pid, url: 'http://127.0.0.1:1', startedAt: new Date().toISOString() });
    assert.equal((statSync(paths.stateDir).mode & 0o777).toString(8), '700');
    assert.equal((statSync(paths.daemonStateFile).mode & 0o777).toString(8), '600');
  } finally {
    process.umask(previous);
  }
});
