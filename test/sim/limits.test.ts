import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RateLimits } from '../../src/sim/limits.js';
import { parseSimulatorArgs, startSimulator } from '../../src/sim/server.js';

test('requests over the per-window limit wait until the oldest leaves the sliding window', () => {
  let now = 0;
  const limits = new RateLimits({ rpm: 2, tpm: 0, windowMs: 6000 }, () => now);
  assert.equal(limits.admit(10), null);
  now = 1000;
  assert.equal(limits.admit(10), null);
  now = 2000;
  assert.equal(limits.admit(10), 4000, 'the request at 0 leaves at 6000');
  assert.equal(limits.admit(10), 4000, 'a refused request is not counted');
  now = 6000;
  assert.equal(limits.admit(10), null);
  assert.equal(limits.admit(10), 1000, 'now the request at 1000 is the oldest');
});

test('tokens count prompt and reply; a request waits until enough tokens left the window', () => {
  let now = 0;
  const limits = new RateLimits({ rpm: 0, tpm: 100, windowMs: 1000 }, () => now);
  assert.equal(limits.admit(60), null);
  now = 100;
  assert.equal(limits.admit(30), null);
  now = 200;
  assert.equal(limits.admit(20), 800, 'the 60 tokens of t=0 must leave');
  assert.equal(limits.admit(10), null, 'a smaller one still fits');
  assert.equal(limits.admit(500), 1000, 'one larger than the limit waits for the whole window, and never fits');
});

test('the simulator answers 429 with Retry-After above --rpm-limit, as a provider does, and counts it', async (t) => {
  const { options } = parseSimulatorArgs(['--rpm-limit', '2', '--limit-window-ms', '60000']);
  const sim = await startSimulator({ port: 0, ...options });
  t.after(() => sim.close());
  const ask = () =>
    fetch(`${sim.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }),
    });
  assert.equal((await ask()).status, 200);
  assert.equal((await ask()).status, 200);
  const refused = await ask();
  assert.equal(refused.status, 429);
  const seconds = Number(refused.headers.get('retry-after'));
  assert.ok(seconds >= 59 && seconds <= 60, `Retry-After ${seconds}`);
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /2 requests per 60000 ms/);
  assert.equal(sim.stats().rateLimited, 1);
  assert.equal(sim.stats().completed, 2);
});

test('limit flags are whole numbers', () => {
  assert.throws(() => parseSimulatorArgs(['--tpm-limit', 'lots']), /--tpm-limit must be a whole number/);
  assert.deepEqual(parseSimulatorArgs([], { SIM_RPM_LIMIT: '60', SIM_LIMIT_WINDOW_MS: '6000' }).options, {
    rpmLimit: 60,
    limitWindowMs: 6000,
  });
});
