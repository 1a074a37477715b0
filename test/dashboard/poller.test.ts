import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { startPoller } from '../../src/dashboard/poller.js';
import type { DashboardState } from '../../src/dashboard/state.js';

test('a first scrape slower than the interval (a cold start on a busy machine) connects instead of reporting the daemon unreachable', async (t) => {
  let scrapes = 0;
  const server = createServer((_req, res) => {
    const delay = scrapes++ === 0 ? 1500 : 0;
    setTimeout(() => res.end('cs_llm_requests_total{route="/v1/chat/completions"} 1\n'), delay);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const states: DashboardState[] = [];
  const poller = startPoller({
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    intervalMs: 300,
    onState: (s) => states.push(s),
  });
  t.after(() => poller.stop());
  while (states.length < 2) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.equal(states[0]!.reachable, true);
  const events = states.at(-1)!.events.map((e) => e.text);
  assert.ok(
    events.some((e) => e.startsWith('connected to ')),
    events.join('\n'),
  );
  assert.ok(!events.some((e) => e.includes('unreachable')), events.join('\n'));
});
