// Which upstreams count as remote, against a real address off this machine: a network namespace joined to
// this one by a veth pair (FACTS.md section 12), with a small OpenAI-like engine listening inside it. Test
// traffic goes only to loopback and to that namespace. Needs root and iproute2 (as on CI); skipped elsewhere.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { deepMerge, loadConfig } from '../../../src/core/config.js';
import type { Logger } from '../../../src/core/log.js';
import { startDaemon } from '../../../src/daemon/server.js';

/** Answers /v1/models and chat completions; a reply's content is the messages it received, as JSON. */
const ENGINE = `
const http = require('node:http');
const [host, port] = process.argv.slice(1);
http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c) => (raw += c));
  req.on('end', () => {
    res.setHeader('content-type', 'application/json');
    if (req.method === 'GET') return res.end(JSON.stringify({ object: 'list', data: [{ id: 'box', object: 'model' }] }));
    const messages = JSON.parse(raw).messages;
    res.end(JSON.stringify({ id: 'chatcmpl-box', object: 'chat.completion', created: 1, model: 'box',
      choices: [{ index: 0, message: { role: 'assistant', content: JSON.stringify(messages) }, finish_reason: 'stop' }] }));
  });
}).listen(Number(port), host, () => console.log('listening'));
`;

function canMakeNamespaces(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to make a network namespace';
  try {
    execFileSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  } catch {
    return 'needs iproute2 (ip netns)';
  }
  return false;
}

/** An engine at a non-loopback address reachable from this machine only (removed after the test). */
async function offBoxEngine(t: TestContext): Promise<string> {
  const id = `${process.pid % 100_000}`;
  const ns = `csturn${id}`;
  const here = `vta${id}`;
  const there = `vtb${id}`;
  // A /30 of its own per process, so parallel runs do not meet.
  const net = `10.219.${100 + (process.pid % 150)}`;
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
  const cleanUp = () => {
    for (const args of [
      ['link', 'del', here],
      ['netns', 'del', ns],
    ]) {
      try {
        ip(...args);
      } catch {
        // already gone
      }
    }
  };
  cleanUp();
  t.after(cleanUp);
  ip('netns', 'add', ns);
  ip('link', 'add', here, 'type', 'veth', 'peer', 'name', there);
  ip('link', 'set', there, 'netns', ns);
  ip('addr', 'add', `${net}.1/30`, 'dev', here);
  ip('link', 'set', here, 'up');
  ip('netns', 'exec', ns, 'ip', 'addr', 'add', `${net}.2/30`, 'dev', there);
  ip('netns', 'exec', ns, 'ip', 'link', 'set', there, 'up');
  const port = '18080';
  const engine = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', ENGINE, `${net}.2`, port], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.after(() => {
    engine.kill();
  });
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: engine.stdout! }).once('line', () => resolve());
    engine.once('exit', (code) => reject(new Error(`the engine in ${ns} exited with ${code}`)));
  });
  return `http://${net}.2:${port}`;
}

function recorder(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const log: Logger = Object.assign(
    (message: string) => {
      lines.push(message);
    },
    { enabled: true },
  );
  return { log, lines };
}

async function daemonFor(t: TestContext, daemon: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-offbox-'));
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: deepMerge({ daemon }, extra) });
  const { log, lines } = recorder();
  const started = startDaemon({ config, paths, port: 0, log, metrics: { gpu: false } });
  void started.then((d) => t.after(() => d.close('test over'))).catch(() => {});
  return { started, lines };
}

const ask = (url: string) =>
  new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 }).chat.completions.create({
    model: 'box',
    messages: [{ role: 'user', content: 'write to ada@example.com' }],
  });

test('an upstream off this machine with no kind is remote: the daemon says so at start, and with allowRemote false does not use it', async (t) => {
  const skip = canMakeNamespaces();
  if (skip) return t.skip(skip);
  const box = await offBoxEngine(t);
  const listed = await daemonFor(t, { upstreams: [{ name: 'box', url: box }] });
  await assert.rejects(listed.started, /no upstream can be used/);
  assert.ok(
    listed.lines.some((l) => l.includes('upstream box') && l.includes(box) && /not a loopback address.*remote/.test(l)),
    listed.lines.join('\n'),
  );
  // The same for the one default upstream (daemon.upstream, --upstream).
  const single = await daemonFor(t, { upstream: box });
  await assert.rejects(single.started, /no upstream can be used/);
});

test('an upstream off this machine marked kind local is used as local; unmarked and allowed, it is remote for redactUpstream', async (t) => {
  const skip = canMakeNamespaces();
  if (skip) return t.skip(skip);
  const box = await offBoxEngine(t);
  const local = await daemonFor(t, { upstreams: [{ name: 'box', url: box, kind: 'local' }] }, { store: { redactUpstream: 'remote' } });
  const reply = await ask((await local.started).url);
  assert.match(reply.choices[0]!.message.content ?? '', /ada@example\.com/, 'a local upstream gets the text as it is');
  assert.ok(!local.lines.some((l) => l.includes('not a loopback address')), local.lines.join('\n'));

  const remote = await daemonFor(t, { upstreams: [{ name: 'box', url: box }], allowRemote: true }, { store: { redactUpstream: 'remote' } });
  const redacted = await ask((await remote.started).url);
  const seen = redacted.choices[0]!.message.content ?? '';
  assert.doesNotMatch(seen, /ada@example\.com/);
  assert.match(seen, /\[EMAIL\]/);
});
