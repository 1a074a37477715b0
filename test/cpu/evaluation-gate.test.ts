import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { EvaluationGate, gateSequence, type EvaluatingSequence } from '../../src/cpu/evaluation-gate.js';
import { startCpuEngine, type RunningCpuEngine } from '../../src/cpu/server.js';
import { requireCpuRuntime, TINY_CHAT } from '../helpers/cpu-runtime.js';

/**
 * A sequence that yields the tokens it was given, one per next(), and logs what it was asked. Its erase
 * settles when the test says so, as node-llama-cpp's does when the context lock comes free.
 */
class ScriptedSequence implements EvaluatingSequence {
  readonly log: string[] = [];
  private finishErase: ((err?: Error) => void) | undefined;
  constructor(readonly name: string) {}

  async *evaluate(tokens: number[]): AsyncGenerator<number, void, unknown> {
    try {
      let next = tokens[0]!;
      for (;;) {
        this.log.push(`${this.name} step ${next}`);
        const replacement: unknown = yield next;
        next = typeof replacement === 'number' ? replacement : next + 1;
      }
    } finally {
      this.log.push(`${this.name} closed`);
    }
  }

  eraseContextTokenRanges(ranges: ReadonlyArray<{ start: number; end: number }>): Promise<void> {
    this.log.push(`${this.name} erase ${ranges.map((r) => `${r.start}-${r.end}`).join(' ')}`);
    return new Promise((resolve, reject) => (this.finishErase = (err) => (err ? reject(err) : resolve())));
  }

  adaptStateToTokens(tokens: number[], _allowShift?: boolean): Promise<void> {
    // As node-llama-cpp does: erase only when the tokens differ from what the sequence holds.
    return tokens.length === 0 ? Promise.resolve() : this.eraseContextTokenRanges([{ start: 0, end: tokens.length }]);
  }

  lockFree(err?: Error): void {
    this.finishErase?.(err);
  }

  /** A method of the sequence's own, to see which `this` it runs with. */
  self(): this {
    return this;
  }
}

/** Lets pending callbacks run: long enough for anything not waiting on the gate to move. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await tick();
}

test('a generation waits at its next token while another sequence erases, and goes on once the erase is done', async () => {
  const gate = new EvaluationGate();
  const busy = new ScriptedSequence('busy');
  const used = new ScriptedSequence('used');
  const running = gateSequence(busy, gate).evaluate([1]);
  assert.deepEqual(await running.next(), { value: 1, done: false });

  const erase = gateSequence(used, gate).adaptStateToTokens([7, 8, 9], false);
  assert.equal(gate.closed, true);
  let resumed = false;
  const waiting = running.next().then((step) => ((resumed = true), step));
  await settle();
  assert.equal(resumed, false, 'the busy sequence asked for no token while the other erased');
  assert.deepEqual(busy.log, ['busy step 1']);

  used.lockFree();
  await erase;
  assert.equal(gate.closed, false);
  assert.deepEqual(await waiting, { value: 2, done: false });
  await running.return(undefined);
  assert.deepEqual(busy.log, ['busy step 1', 'busy step 2', 'busy closed']);
  assert.deepEqual(used.log, ['used erase 0-3']);
});

test('two erases hold the gate until both end, a failed one included; nothing to erase does not hold it', async () => {
  const gate = new EvaluationGate();
  const a = new ScriptedSequence('a');
  const b = new ScriptedSequence('b');
  const ga = gateSequence(a, gate);
  const gb = gateSequence(b, gate);
  await ga.adaptStateToTokens([]);
  assert.equal(gate.closed, false);

  const eraseA = ga.eraseContextTokenRanges([{ start: 3, end: 9 }]);
  const eraseB = gb.eraseContextTokenRanges([{ start: 0, end: 2 }]);
  const tokens = gateSequence(new ScriptedSequence('c'), gate).evaluate([5]);
  let stepped = false;
  const step = tokens.next().then((s) => ((stepped = true), s));
  a.lockFree();
  await eraseA;
  await settle();
  assert.equal(stepped, false, 'a has erased, b has not: even a first step waits');
  b.lockFree(new Error('disposed'));
  await assert.rejects(eraseB, /disposed/);
  assert.deepEqual(await step, { value: 5, done: false });
  assert.equal(gate.closed, false);
  await tokens.return(undefined);
});

test("the gated sequence passes replacement tokens on and runs the sequence's methods on the sequence itself", async () => {
  const gate = new EvaluationGate();
  const target = new ScriptedSequence('s');
  const sequence = gateSequence(target, gate);
  assert.equal(sequence.self(), target);
  assert.equal(sequence.self, sequence.self, 'one bound method per name');
  const tokens = sequence.evaluate([1]);
  await tokens.next();
  assert.deepEqual(await tokens.next(7), { value: 7, done: false });
  assert.deepEqual(await tokens.next(), { value: 8, done: false });
  await tokens.return(undefined);
  assert.deepEqual(target.log, ['s step 1', 's step 7', 's step 8', 's closed']);
});

/** What the client sees of a stream, in order: the first content piece, and the end. */
async function stream(
  engine: RunningCpuEngine,
  body: object,
  events: string[],
  name: string,
): Promise<{ text: string; completionTokens: number }> {
  const res = await fetch(`${engine.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'tiny-chat', stream: true, stream_options: { include_usage: true }, ...body }),
  });
  assert.equal(res.status, 200);
  let text = '';
  let completionTokens = 0;
  let buffer = '';
  const decoder = new TextDecoder();
  for await (const bytes of res.body!) {
    buffer += decoder.decode(bytes as Uint8Array, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const line = buffer.slice(0, end).replace(/^data: /, '');
      buffer = buffer.slice(end + 2);
      if (line === '[DONE]') continue;
      const chunk = JSON.parse(line) as { choices: Array<{ delta: { content?: string } }>; usage?: { completion_tokens: number } };
      const piece = chunk.choices[0]?.delta.content ?? '';
      if (piece !== '' && text === '') events.push(`${name} first content`);
      text += piece;
      if (chunk.usage) completionTokens = chunk.usage.completion_tokens;
    }
  }
  events.push(`${name} done`);
  return { text, completionTokens };
}

const STORY = { messages: [{ role: 'user', content: 'Tell me a story.' }], temperature: 0, max_tokens: 200 };
/** Runs to max_tokens whatever the model says: a generation long enough to still run when the next one starts. */
const LONG = { messages: [{ role: 'user', content: 'What is 2+2?' }], temperature: 0, max_tokens: 400, ignore_eos: true };

test(
  'a request on a used sequence gets its first token while the others still generate, and the same reply as alone',
  { timeout: 180_000 },
  async (t) => {
    if (!requireCpuRuntime(t)) return;
    // Three sequences: with two others generating, their next tokens are always queued before the batch loop
    // looks (with one, the loop sometimes finds its queue empty and lets an erase through by chance).
    const engine = await startCpuEngine({ modelPath: TINY_CHAT, port: 0, threads: 1, ctxSize: 512, parallel: 3, log: () => {} });
    t.after(() => engine.close());
    // Resolves once the stream has its first content; `done` (in an object, so the await does not adopt it) at its end.
    const started = async (events: string[], name: string, body: object) => {
      const done = stream(engine, body, events, name);
      while (!events.includes(`${name} first content`) && !events.includes(`${name} done`)) await tick();
      return { done };
    };
    const warm: string[] = [];
    const alone = await stream(engine, STORY, warm, 'alone');
    // Every sequence gets tokens to erase: each warm-up request starts while the ones before it stream.
    const w1 = await started(warm, 'w1', LONG);
    const w2 = await started(warm, 'w2', LONG);
    await Promise.all([w1.done, w2.done, stream(engine, { ...STORY, max_tokens: 50 }, warm, 'w3')]);
    assert.ok(warm.indexOf('w3 first content') < warm.indexOf('w1 done'), `the warm-up overlapped: ${warm.join(', ')}`);

    // Before the gate, B's erase waited for the context lock until A1 and A2 had finished their whole replies.
    const events: string[] = [];
    const a1 = await started(events, 'A1', LONG);
    const a2 = await started(events, 'A2', LONG);
    const b = await stream(engine, STORY, events, 'B');
    const [a1Done, a2Done] = await Promise.all([a1.done, a2.done]);
    const order = events.join(', ');
    assert.ok(events.indexOf('B first content') < events.indexOf('A1 done'), order);
    assert.ok(events.indexOf('B first content') < events.indexOf('A2 done'), order);
    assert.equal(a1Done.completionTokens, LONG.max_tokens);
    assert.equal(a2Done.completionTokens, LONG.max_tokens);
    assert.equal(b.text, alone.text, 'the erase left the sequence as a fresh one would be');
    assert.equal(b.completionTokens, alone.completionTokens);
  },
);
