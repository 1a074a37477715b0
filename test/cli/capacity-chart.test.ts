import assert from 'node:assert/strict';
import { test } from 'node:test';
import { summarizeStep } from '../../src/capacity/ramp.js';
import { latencyChart } from '../../src/cli/capacity-chart.js';

const step = (rate: number, e2eMs: number) =>
  summarizeStep([{ result: 'ok', e2eMs, ttftMs: null, completionTokens: 1 }], rate, 1, { sloP95Ms: 1200, maxErrorShare: 0.01 });

test('the chart puts p95 against the offered rate, the SLO as a line, and rates under their columns', () => {
  const lines = latencyChart([step(1, 200), step(10, 600), step(100, 9000)], { sloSeconds: 1.2, width: 80 });
  const text = lines.join('\n');
  const plot = lines.slice(0, -2).join('\n');
  assert.match(text, /1\.2┤┄+ SLO p95/);
  assert.equal((plot.match(/●/g) ?? []).length, 2, 'two points within the chart');
  assert.equal((plot.match(/▲/g) ?? []).length, 1, 'one above it, drawn at the top');
  assert.match(lines[lines.length - 2]!, /^\s+1\s+10\s+100$/);
  assert.match(lines[lines.length - 1]!, /log scale/);
  assert.ok(lines.every((l) => l.length <= 80));
  assert.deepEqual(latencyChart([], { sloSeconds: 1, width: 80 }), []);
});
