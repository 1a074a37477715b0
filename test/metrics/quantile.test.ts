import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketDelta, histogramQuantile, percentile } from '../../src/metrics/quantile.js';

const INF = Number.POSITIVE_INFINITY;

test('a quantile interpolates linearly inside the bucket that holds its rank', () => {
  // 10 observations: 4 at or below 0.1, 4 more up to 0.5, 2 more up to 1.
  const buckets = { bounds: [0.1, 0.5, 1, INF], counts: [4, 8, 10, 10] };
  assert.equal(histogramQuantile(0.5, buckets), 0.1 + 0.4 * (1 / 4));
  assert.equal(histogramQuantile(0.2, buckets), 0.1 * (2 / 4));
  assert.equal(histogramQuantile(0.95, buckets), 0.5 + 0.5 * (1.5 / 2));
  assert.equal(histogramQuantile(1, buckets), 1);
});

test('a rank in the +Inf bucket answers the highest finite bound, as Prometheus does', () => {
  assert.equal(histogramQuantile(0.99, { bounds: [0.1, 1, INF], counts: [1, 2, 10] }), 1);
});

test('no observations give no quantile', () => {
  assert.equal(histogramQuantile(0.5, { bounds: [0.1, INF], counts: [0, 0] }), null);
  assert.equal(histogramQuantile(0.5, { bounds: [], counts: [] }), null);
});

test('the window between two scrapes is the difference of their cumulative buckets', () => {
  const before = { bounds: [0.1, 1, INF], counts: [5, 7, 7] };
  const now = { bounds: [0.1, 1, INF], counts: [5, 9, 10] };
  const window = bucketDelta(now, before);
  assert.deepEqual(window.counts, [0, 2, 3]);
  // Only slow requests in the window: the median is above 0.1 even though most requests ever were fast.
  assert.ok(histogramQuantile(0.5, window)! > 0.1);
});

test('after a counter reset (the daemon restarted) the window is everything counted since', () => {
  const before = { bounds: [0.1, INF], counts: [50, 60] };
  const now = { bounds: [0.1, INF], counts: [2, 3] };
  assert.deepEqual(bucketDelta(now, before).counts, [2, 3]);
});

test('percentile of samples is the nearest rank: the smallest value with at least p% of the samples at or below it', () => {
  const ten = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
  assert.equal(percentile(ten, 50), 5);
  assert.equal(percentile(ten, 90), 9);
  assert.equal(percentile(ten, 99), 10);
  assert.equal(percentile(ten, 100), 10);
  assert.equal(percentile(ten, 0), 1);
  assert.equal(percentile([1, 2, 3, 4], 50), 2, 'an even count takes the lower middle, never a value above half the samples');
  assert.equal(percentile([1, 2, 3, 4], 2.5), 1);
  assert.equal(percentile([1, 2, 3, 4], 97.5), 4);
  assert.equal(percentile([7], 50), 7);
  assert.ok(Number.isNaN(percentile([], 50)), 'no samples, no percentile');
});
