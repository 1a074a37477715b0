import assert from 'node:assert/strict';
import { test } from 'node:test';
import { retryAfterMs, UpstreamMember, UpstreamSet } from '../../../src/daemon/routing/upstream-set.js';
import type { Upstream } from '../../../src/daemon/upstream.js';

const noClient = (url: string): Upstream => ({ url, request: () => Promise.reject(new Error('not used')), close: async () => {} });

function members(weights: number[]): UpstreamMember[] {
  return weights.map(
    (weight, i) =>
      new UpstreamMember({ name: `u${i}`, kind: 'local', weight, models: {}, client: noClient(`http://127.0.0.1:${9000 + i}`) }),
  );
}

test('weighted choice follows the weights', () => {
  let seed = 1;
  const random = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  const set = new UpstreamSet(members([3, 1]), { ejectAfter: 5, ejectBaseMs: 1000, sticky: false, random });
  const counts = [0, 0];
  for (let i = 0; i < 4000; i++) counts[Number(set.pick(null, null)!.name.slice(1))]!++;
  assert.ok(counts[0]! > 2700 && counts[0]! < 3300, `about 3:1, got ${counts.join(':')}`);
});

test('sticky choice keeps a session on one upstream, and moves it only while that one is out', () => {
  const set = new UpstreamSet(members([1, 1, 1]), { ejectAfter: 1, ejectBaseMs: 1000, sticky: true, now: () => 0 });
  const seen = new Set<string>();
  for (let i = 0; i < 30; i++) seen.add(set.pick(`session-${i}`, null)!.name);
  assert.equal(seen.size, 3, 'sessions spread over all upstreams');
  const home = set.pick('session-x', null)!;
  for (let i = 0; i < 10; i++) assert.equal(set.pick('session-x', null), home);
  set.failure(home); // ejectAfter 1: out
  const moved = set.pick('session-x', null)!;
  assert.notEqual(moved, home);
  for (let i = 0; i < 10; i++) assert.equal(set.pick('session-x', null), moved, 'moved sessions stay put too');
});

test('ejection grows with each ejection in a row; after it one probe at a time; success restores', () => {
  let now = 0;
  const [a, b] = members([1, 0]);
  const set = new UpstreamSet([a!, b!], { ejectAfter: 2, ejectBaseMs: 1000, sticky: false, now: () => now });
  set.failure(a!);
  assert.equal(set.pick(null, null), a, 'one failure is not enough');
  set.failure(a!);
  assert.equal(a!.ejectedUntil, 1000);
  assert.equal(set.pick(null, null), b);
  now = 1000;
  assert.equal(set.pick(null, null), a, 'probation: it may be tried');
  set.begin(a!);
  assert.equal(set.pick(null, null), b, 'only one probe at a time');
  set.failure(a!);
  assert.equal(a!.ejectedUntil, 3000, 'a failed probe ejects it for twice as long');
  now = 3000;
  set.begin(a!);
  set.success(a!);
  assert.equal(a!.probation, false);
  assert.equal(set.pick(null, null), a);
});

test('overloaded upstreams are skipped until Retry-After while another can serve; never when none can', () => {
  let now = 0;
  const [a, b] = members([1, 1]);
  const set = new UpstreamSet([a!, b!], { ejectAfter: 5, ejectBaseMs: 1000, sticky: false, now: () => now });
  set.overload(a!, 2000);
  for (let i = 0; i < 10; i++) assert.equal(set.pick(null, null), b);
  set.overload(b!, 5000);
  assert.equal(set.pick(null, null), a, 'every one overloaded: the first attempt goes to the one that frees up first');
  assert.equal(set.pick(null, [a!]), null, 'a retry never goes to an overloaded upstream');
  assert.equal(set.overloadEndsInMs(), 2000);
  now = 2000;
  assert.equal(set.pick(null, null), a);
  const [only] = members([1]);
  const single = new UpstreamSet([only!], { ejectAfter: 5, ejectBaseMs: 1000, sticky: false, now: () => now });
  single.overload(only!, 7000);
  assert.equal(single.pick(null, null), only, 'the only upstream is always asked');
  assert.equal(single.pick(null, [only!]), null);
  assert.equal(retryAfterMs('3', 0), 3000);
  assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 0), 10_000);
  assert.equal(retryAfterMs(undefined, 0), 1000);
});
