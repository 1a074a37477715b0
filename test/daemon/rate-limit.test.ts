import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { KeyRateLimiter } from '../../src/daemon/rate-limit.js';
import { openStore } from '../../src/store/store.js';
import { startHarness } from './harness.js';

test('a bucket allows a burst, then one request per refill interval, and says when to come back', () => {
  const limiter = new KeyRateLimiter({ requestsPerMinute: 6, burst: 2, keys: {} });
  assert.equal(limiter.take('csk_a', 0), null);
  assert.equal(limiter.take('csk_a', 0), null);
  // 6 per minute: one every 10 s.
  assert.equal(limiter.take('csk_a', 0), 10);
  assert.equal(limiter.take('csk_a', 4_000), 6);
  assert.equal(limiter.take('csk_a', 10_000), null);
  assert.equal(limiter.take('csk_a', 10_000), 10);
  // Another key has its own bucket; a long quiet spell refills only up to the burst.
  assert.equal(limiter.take('csk_b', 10_000), null);
  assert.equal(limiter.take('csk_a', 1_000_000), null);
  assert.equal(limiter.take('csk_a', 1_000_000), null);
  assert.notEqual(limiter.take('csk_a', 1_000_000), null);
});

test('per-key settings override the default, and 0 requests per minute means no limit', () => {
  const limiter = new KeyRateLimiter({ requestsPerMinute: 0, keys: { csk_slow: { requestsPerMinute: 1 } } });
  assert.equal(limiter.active, true);
  for (let i = 0; i < 100; i++) assert.equal(limiter.take('csk_other', 0), null);
  for (let i = 0; i < 100; i++) assert.equal(limiter.take(undefined, 0), null);
  assert.equal(limiter.take('csk_slow', 0), null);
  assert.equal(limiter.take('csk_slow', 0), 60);
  assert.equal(new KeyRateLimiter({ requestsPerMinute: 0, keys: {} }).active, false);
});

test('through the daemon: a key over its rate gets 429 with Retry-After; other keys and /healthz do not', async (t) => {
  const keys: Record<string, string> = {};
  const h = await startHarness(t, {
    beforeStart: async (paths, config) => {
      const s = await openStore({ file: paths.dbFile });
      for (const name of ['batch-job', 'frontend']) keys[name] = (await s.keys.create(name, Date.now())).key;
      await s.close();
      // Configured by the key's public prefix (what cs-llm keys list shows), known once the key exists.
      config.daemon.rateLimit.keys[keys['batch-job']!.slice(0, 12)] = { requestsPerMinute: 2 };
    },
  });
  const client = (key: string) => new OpenAI({ baseURL: `${h.daemon.url}/v1`, apiKey: key, maxRetries: 0, timeout: 30_000 });
  const ask = (key: string) => client(key).chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'hi' }] });

  await ask(keys['batch-job']!);
  await ask(keys['batch-job']!);
  const refused = await ask(keys['batch-job']!).then(
    () => null,
    (err: unknown) => err,
  );
  assert.ok(refused instanceof OpenAI.RateLimitError, `expected a RateLimitError, got ${String(refused)}`);
  assert.equal(refused.code, 'rate_limit_exceeded');
  assert.match(refused.message, /rate limit of 2 requests per minute reached for key csk_/);
  // 2 per minute: the next one in about 30 s.
  const retryAfter = Number(refused.headers?.get('retry-after'));
  assert.ok(retryAfter >= 29 && retryAfter <= 30, `Retry-After ${retryAfter}`);

  for (let i = 0; i < 5; i++) await ask(keys.frontend!);
  assert.equal(
    (await fetch(`${h.daemon.url}/healthz`, { headers: { authorization: `Bearer ${keys['batch-job']}` } })).status,
    200,
    '/healthz is not limited',
  );
  assert.equal(
    (await fetch(`${h.daemon.url}/v1/models`, { headers: { authorization: `Bearer ${keys['batch-job']}` } })).status,
    429,
    'the whole API is limited for that key',
  );
});
