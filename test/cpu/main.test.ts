/*
 * Graceful stop: SIGTERM (or SIGINT) lets requests in flight finish, refuses new ones, unloads the model and
 * exits 0, although node-llama-cpp's import installs a signal hook that would otherwise end the process (143).
 */

import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { entryArgs, ROOT } from '../helpers/cli.js';
import { startCpuEngine } from '../../src/cpu/server.js';
import { requireCpuRuntime, TINY_CHAT } from '../helpers/cpu-runtime.js';

const CPU_MAIN = entryArgs('cpu/main');

/** tiny-chat tells the same 89-token story at temperature 0. */
const story = (stream: boolean) =>
  JSON.stringify({
    model: 'tiny-chat',
    messages: [{ role: 'user', content: 'Tell me a story.' }],
    temperature: 0,
    max_tokens: 200,
    stream,
  });

/** The engine as a real process; line() waits for a stdout line matching re. */
function launch(t: TestContext, args: string[]) {
  const child = spawn(process.execPath, [...CPU_MAIN, '--model', TINY_CHAT, '--threads', '1', '--port', '0', ...args], {
    cwd: ROOT,
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
  createInterface({ input: child.stdout }).on('line', (line) => {
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
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const line = (re: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const found = seen.map((l) => re.exec(l)).find((m) => m);
      if (found) return resolve(found);
      waiters.push({ re, resolve });
      void exited.then(([code, signal]) =>
        reject(new Error(`engine exited (${code ?? signal}) before printing ${re}; stdout:\n${seen.join('\n')}\nstderr:\n${stderr}`)),
      );
    });
  return { child, exited, line, seen };
}

/** One request on a connection of its own (no keep-alive pool): its status, or the connect error's code. */
function freshConnection(url: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request(`${url}/health`, { agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    req.end();
  });
}

const post = (url: string, body: string) =>
  fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });

/** The content of an SSE reply, and its data lines. */
function readStream(text: string) {
  const data = text
    .split('\n\n')
    .filter((e) => e.startsWith('data: '))
    .map((e) => e.slice('data: '.length));
  const chunks = data
    .filter((d) => d !== '[DONE]')
    .map(
      (d) =>
        JSON.parse(d) as {
          error?: { message: string; code: number };
          choices?: Array<{ delta: { content?: string }; finish_reason: string | null }>;
        },
    );
  return {
    data,
    content: chunks.map((c) => c.choices?.[0]?.delta.content ?? '').join(''),
    finish: chunks.map((c) => c.choices?.[0]?.finish_reason).find((f) => f),
    error: chunks.find((c) => c.error)?.error,
  };
}

test(
  'SIGTERM mid-stream: the streams and queued requests finish whole, new connections are refused, the process exits 0',
  { timeout: 180_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const engine = launch(t, ['--ctx-size', '512', '--drain-timeout-ms', '120000']);
    const [, url] = await engine.line(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    await engine.line(/Application startup complete/);
    const expected = ((await (await post(url!, story(false))).json()) as { choices: Array<{ message: { content: string } }> }).choices[0]!
      .message.content;
    assert.ok(expected.length > 50);

    // A stream that is generating, five requests queued behind it, and a second stream last in the queue.
    const first = await post(url!, story(true));
    const firstReader = first.body!.getReader();
    const firstChunk = await firstReader.read();
    const rest = [...Array.from({ length: 5 }, () => post(url!, story(false))), post(url!, story(true))];
    // All seven arrived: each is running, waiting or done (one finished before: the reference reply).
    for (;;) {
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const value = (prefix: string) =>
        Number(
          metrics
            .split('\n')
            .find((l) => l.startsWith(prefix))
            ?.split(' ')
            .pop() ?? 0,
        );
      if (
        value('vllm:num_requests_running{') +
          value('vllm:num_requests_waiting{') +
          value('vllm:request_success_total{finished_reason="stop"') >=
        8
      )
        break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    engine.child.kill('SIGTERM');
    const [, inFlight] = await engine.line(/Not accepting requests any more; (\d+) in flight/);
    assert.ok(Number(inFlight) >= 1, 'the signal came while requests were in flight');
    const refused = await freshConnection(url!);
    assert.ok(refused === 'ECONNREFUSED' || refused === 503, `a new connection after SIGTERM: ${refused}`);

    const decoder = new TextDecoder();
    let firstText = decoder.decode(firstChunk.value, { stream: true });
    for (let r = await firstReader.read(); !r.done; r = await firstReader.read()) firstText += decoder.decode(r.value, { stream: true });
    const answers = await Promise.all(
      rest.map(async (pending) => {
        const res = await pending;
        return { status: res.status, text: await res.text() };
      }),
    );
    for (const text of [firstText, answers[5]!.text]) {
      const stream = readStream(text);
      assert.ok(text.endsWith('data: [DONE]\n\n'), `the stream ends with [DONE]: ${JSON.stringify(text.slice(-120))}`);
      assert.equal(stream.content, expected);
      assert.equal(stream.finish, 'stop');
    }
    for (const answer of answers.slice(0, 5)) {
      assert.equal(answer.status, 200);
      assert.equal((JSON.parse(answer.text) as { choices: Array<{ message: { content: string } }> }).choices[0]!.message.content, expected);
    }
    const [code, signal] = await engine.exited;
    assert.deepEqual([code, signal], [0, null]);
    assert.ok(engine.seen.includes('INFO Drained: every request in flight finished'), engine.seen.join('\n'));
    assert.ok(engine.seen.includes('INFO Shutdown complete: model unloaded'));
  },
);

test('SIGTERM while the model loads, and a second one, still exit 0 (not 143) with no ERROR line', { timeout: 120_000 }, async (t) => {
  if (!requireCpuRuntime(t)) return;
  const engine = launch(t, ['--ctx-size', '512']);
  await engine.line(/Loading model weights from/);
  engine.child.kill('SIGTERM');
  await engine.line(/Shutting down \(SIGTERM\)/);
  engine.child.kill('SIGTERM');
  const [code, signal] = await engine.exited;
  assert.deepEqual([code, signal], [0, null], engine.seen.join('\n'));
  assert.ok(!engine.seen.some((l) => l.startsWith('ERROR')), engine.seen.join('\n'));
  assert.ok(engine.seen.includes('INFO Shutdown complete: model unloaded'));
});

test(
  'when the drain is cut short, requests still in flight get a 503 (an SSE error event mid-stream), never a cut connection',
  { timeout: 120_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    const lines: string[] = [];
    const engine = await startCpuEngine({ modelPath: TINY_CHAT, port: 0, threads: 1, ctxSize: 512, log: (line) => lines.push(line) });
    t.after(() => engine.close());
    const stream = await post(engine.url, story(true));
    const reader = stream.body!.getReader();
    const firstChunk = await reader.read();
    const queued = Array.from({ length: 4 }, () => post(engine.url, story(false)));
    // Every request arrived (and one sequence is busy): stop in this very tick, as a drain timeout would.
    let finishedBefore = -1;
    while (finishedBefore < 0) {
      const s = engine.stats();
      if (s.running === 1 && s.running + s.waiting + s.completed === 5) {
        finishedBefore = s.completed;
        void engine.close(60_000);
        void engine.close(0); // a second signal: the drain ends now
      } else await new Promise((resolve) => setImmediate(resolve));
    }
    const decoder = new TextDecoder();
    let streamText = decoder.decode(firstChunk.value, { stream: true });
    for (let r = await reader.read(); !r.done; r = await reader.read()) streamText += decoder.decode(r.value, { stream: true });
    const answers = await Promise.all(
      queued.map(async (pending) => {
        const res = await pending;
        return { status: res.status, body: (await res.json()) as { error?: { message: string; code: number } } };
      }),
    );
    await engine.close();

    const streamed = readStream(streamText);
    const whole = [streamed.finish === 'stop' && streamText.endsWith('data: [DONE]\n\n'), ...answers.map((a) => a.status === 200)].filter(
      Boolean,
    ).length;
    const refused = answers.filter((a) => a.status === 503 && /shutting down/.test(a.body.error?.message ?? ''));
    // What had finished before the stop got its whole reply; everything else a 503 that says why.
    assert.equal(whole, finishedBefore);
    assert.equal(whole + refused.length + (streamed.error ? 1 : 0), 5);
    if (finishedBefore === 0) {
      // The stream was generating: its last event is the error (openai clients raise it), not [DONE].
      assert.equal(streamed.error?.code, 503);
      assert.match(streamed.error?.message ?? '', /shutting down: this request was stopped before it finished/);
      assert.ok(!streamed.data.includes('[DONE]'));
    }
    assert.ok(
      lines.some((l) => /^WARN Stopping [1-5] request\(s\) still in flight \(the drain was ended early\)/.test(l)),
      lines.join('\n'),
    );
    assert.equal(engine.stats().aborted, 5 - finishedBefore);
  },
);
