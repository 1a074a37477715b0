import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { resolvePaths } from '../../src/core/paths.js';
import { newEngineKey, writeEngineKey } from '../../src/engine/engine-key.js';
import { openStore } from '../../src/store/store.js';
import { startSimulator } from '../../src/sim/server.js';
import { runDaemon } from './harness.js';

test('a second stop signal during the drain cuts it: the stream in flight ends unstored, the state file goes, the process exits 0', async (t) => {
  // 5 tokens a second: the reply to "count to 60" would take 12 s to drain.
  const sim = await startSimulator({ port: 0, tokensPerSecond: 5 });
  t.after(() => sim.close());
  const { child, paths, state } = await runDaemon(t, sim.url);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));

  const res = await request(`${state.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-session-id': 'cut' },
    body: JSON.stringify({ model: 'cs-llm-sim', stream: true, messages: [{ role: 'user', content: 'count to 60' }] }),
  });
  const chunks = res.body[Symbol.asyncIterator]();
  let received = ((await chunks.next()).value as Buffer).toString();
  child.kill('SIGTERM');
  while (!/shutting down: SIGTERM/.test(stderr)) await new Promise((r) => setTimeout(r, 20));
  child.kill('SIGTERM');
  try {
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) received += (next.value as Buffer).toString();
  } catch {
    // the connection was cut: what a client of a cut drain sees
  }
  assert.ok(!received.includes('data: [DONE]'), 'the stream was cut, not finished');

  const result = await child;
  assert.equal(result.signal, undefined, `the process ended by itself, not by the signal\n${stderr}`);
  assert.equal(result.exitCode, 0, stderr);
  assert.match(stderr, /SIGTERM while stopping: not waiting for requests in flight any longer/);
  assert.match(stderr, /stopped \(SIGTERM\)/);
  assert.equal(existsSync(paths.daemonStateFile), false, 'the state file is removed');
  const store = await openStore({ file: paths.dbFile });
  t.after(() => store.close());
  assert.equal(await store.sessions.get('default', 'cut', Date.now()), null, 'a cut turn stores nothing');
});

test("a daemon started with no upstream key calls the engine of cs-llm up with that engine's key from the state directory, and no other upstream", async (t) => {
  // The engine as up leaves it: its key 0600 in the state directory, required on /v1/*.
  const key = newEngineKey();
  const sim = await startSimulator({ port: 0, apiKey: key });
  t.after(() => sim.close());
  const enginePort = new URL(sim.url).port;
  const chat = async (url: string) =>
    (
      await request(`${url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'Hello' }] }),
      })
    ).statusCode;
  const home = () => {
    const dir = mkdtempSync(join(tmpdir(), 'cs-llm-daemon-key-'));
    writeEngineKey(resolvePaths({ CS_LLM_HOME: dir }).stateDir, key);
    return dir;
  };
  // As `cs-llm daemon start` or a systemd unit start it: nothing but the config, whose engine.port is the engine's.
  const front = await runDaemon(t, sim.url, { home: home(), env: { CS_LLM_ENGINE_PORT: enginePort } });
  assert.equal(await chat(front.state.url), 200);
  // An upstream that is not that engine (here: engine.port says the engine is elsewhere) is never sent the key.
  const elsewhere = await runDaemon(t, sim.url, { home: home(), env: { CS_LLM_ENGINE_PORT: String(Number(enginePort) + 1) } });
  assert.equal(await chat(elsewhere.state.url), 401);
});
