import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../src/core/config.js';
import { ConfigError } from '../../src/core/errors.js';

function loadWithPrice(price: unknown) {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-price-'));
  writeFileSync(
    join(dir, 'config.json'),
    JSON.stringify({ daemon: { upstreams: [{ name: 'cloud', url: 'https://api.example.com/v1', price }] } }),
  );
  return loadConfig({ env: { CS_LLM_HOME: dir } });
}

function refused(price: unknown, pattern: RegExp): void {
  assert.throws(
    () => loadWithPrice(price),
    (err: unknown) =>
      err instanceof ConfigError && err.message.includes('daemon.upstreams.0.price') && pattern.test(err.message) && Boolean(err.next),
  );
}

test('a token price is read with its defaults: per 1M tokens, in USD', () => {
  const price = loadWithPrice({ input: 0.15, output: 0.6 }).config.daemon.upstreams[0]!.price!;
  assert.deepEqual(price, { input: 0.15, output: 0.6, per: '1M', currency: 'USD' });
});

test('a local engine may be priced by its power or by the month', () => {
  const power = loadWithPrice({ electricityPerKWh: 0.62, gpus: [0, 1], currency: 'CNY' }).config.daemon.upstreams[0]!.price!;
  assert.equal(power.electricityPerKWh, 0.62);
  assert.deepEqual(power.gpus, [0, 1]);
  assert.equal(loadWithPrice({ monthly: 2000, currency: 'CNY' }).config.daemon.upstreams[0]!.price!.monthly, 2000);
});

test('prices that cannot be counted are refused with the field and what to write', () => {
  refused({ input: 0.15, output: 0.6, currency: 'RMB' }, /price\.currency.*ISO 4217.*CNY/);
  refused({ input: 0.15, output: 0.6, currency: 'usd' }, /ISO 4217/);
  refused({ input: 0.15 }, /both "input" and "output"/);
  refused({ input: 1, output: 2, per: '1B' }, /"1K" or "1M"/);
  refused({ input: -1, output: 2 }, /price\.input.*0 or more/);
  refused({ currency: 'EUR' }, /give a price/);
  refused({ cachedInput: 0.1 }, /cachedInput/);
  refused({ monthly: 100, gpus: [0] }, /electricityPerKWh/);
  refused({ input: 1, output: 2, prompt: 3 }, /prompt/);
});

test('rate limits need a limit, whole and positive; routing is weighted or cheapest', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cs-llm-limits-'));
  const load = (daemon: unknown) => {
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ daemon }));
    return loadConfig({ env: { CS_LLM_HOME: dir } });
  };
  const upstream = (limits: unknown) => ({ upstreams: [{ name: 'cloud', url: 'https://api.example.com/v1', limits }] });
  assert.deepEqual(load(upstream({ rpm: 60 })).config.daemon.upstreams[0]!.limits, { rpm: 60, windowMs: 60_000 });
  assert.throws(() => load(upstream({})), /limits.*give "rpm", "tpm" or both/);
  assert.throws(() => load(upstream({ rpm: 0 })), /limits\.rpm.*1 or more/);
  assert.throws(() => load(upstream({ rpm: 1.5 })), /limits\.rpm/);
  assert.throws(() => load({ routing: 'cheap' }), /daemon\.routing.*"weighted" or "cheapest"/);
});
