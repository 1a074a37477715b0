import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../src/daemon/api-error.js';
import { TenantQuotas } from '../../src/daemon/quotas.js';

const quota = (q: Partial<{ requestsPerMinute: number; tokensPerDay: number; maxSessions: number }>) => ({
  requestsPerMinute: 0,
  tokensPerDay: 0,
  maxSessions: 0,
  ...q,
});

function refused(fn: () => void): ApiError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 429);
    assert.equal(err.code, 'quota_exceeded');
    return err;
  }
  assert.fail('expected a 429');
}

test("a tenant's requests per minute: a minute's worth at once, then one each 60/N s, Retry-After in whole seconds", () => {
  const quotas = new TenantQuotas({ a: quota({ requestsPerMinute: 6 }) });
  const t0 = 1_000_000;
  for (let i = 0; i < 6; i++) quotas.admitRequest('a', t0);
  assert.equal(refused(() => quotas.admitRequest('a', t0)).headers['retry-after'], '10');
  assert.equal(refused(() => quotas.admitRequest('a', t0 + 9_000)).headers['retry-after'], '1');
  quotas.admitRequest('a', t0 + 10_000);
  // Other tenants, configured or not, are not held back.
  quotas.admitRequest('b', t0);
  assert.deepEqual(quotas.refusals().get('a'), { requests: 2, tokens: 0, sessions: 0 });
});

test('tokens per UTC day: refused once the count reaches the quota, until midnight UTC, and counted afresh the next day', () => {
  const quotas = new TenantQuotas({ a: quota({ tokensPerDay: 100 }) });
  const late = Date.parse('2026-03-01T23:59:30Z');
  quotas.seedTokens(new Map([['a', 60]]), late);
  quotas.admitTokens('a', late);
  quotas.addTokens('a', 40, late);
  assert.equal(refused(() => quotas.admitTokens('a', late)).headers['retry-after'], '30');
  const next = Date.parse('2026-03-02T00:00:01Z');
  assert.equal(quotas.tokensToday('a', next), 0);
  quotas.admitTokens('a', next);
  assert.deepEqual(quotas.tokenUse(late), [{ tenant: 'a', used: 100, limit: 100 }]);
});

test('max sessions: the refusal waits until the first live session expires', () => {
  const quotas = new TenantQuotas({ a: quota({ maxSessions: 2 }) });
  assert.equal(quotas.maxSessions('a'), 2);
  assert.equal(quotas.maxSessions('toString'), 0, 'own names only');
  assert.equal(quotas.refuseSession('a', 1_000_000 + 90_500, 1_000_000).headers['retry-after'], '91');
});
