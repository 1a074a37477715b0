import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketsOf, parsePrometheusText, select, sumOf } from '../../src/metrics/prom-text.js';

const VLLM = `# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{model_name="qwen"} 3.0
# TYPE vllm:gpu_cache_usage_perc gauge
vllm:gpu_cache_usage_perc{model_name="qwen"} 0.25
# TYPE vllm:prompt_tokens counter
vllm:prompt_tokens_total{model_name="qwen"} 1234.0
# TYPE h histogram
h_bucket{le="0.1",path="a"} 1
h_bucket{le="0.1",path="b"} 2
h_bucket{le="1",path="a"} 4
h_bucket{le="1",path="b"} 2
h_bucket{le="+Inf",path="a"} 5
h_bucket{le="+Inf",path="b"} 3
h_count{path="a"} 5
plain_metric 42 1700000000000
weird{msg="a \\"quoted\\" \\\\ back\\nslash, and } brace"} NaN
`;

test('samples keep their names, labels and values, timestamps ignored', () => {
  const parsed = parsePrometheusText(VLLM);
  assert.deepEqual(select(parsed, 'vllm:num_requests_running'), [
    { name: 'vllm:num_requests_running', labels: { model_name: 'qwen' }, value: 3 },
  ]);
  assert.equal(sumOf(parsed, 'plain_metric'), 42);
  assert.equal(parsed.types.get('vllm:prompt_tokens'), 'counter');
  assert.equal(sumOf(parsed, 'vllm:prompt_tokens_total'), 1234);
});

test('escaped quotes, backslashes and newlines in label values are decoded', () => {
  const [weird] = select(parsePrometheusText(VLLM), 'weird');
  assert.equal(weird!.labels.msg, 'a "quoted" \\ back\nslash, and } brace');
  assert.ok(Number.isNaN(weird!.value));
});

test('a missing metric sums to null, not zero', () => {
  assert.equal(sumOf(parsePrometheusText(VLLM), 'vllm:kv_cache_usage_perc'), null);
});

test('histogram buckets are summed over the other labels and sorted by bound, +Inf last', () => {
  const buckets = bucketsOf(parsePrometheusText(VLLM), 'h');
  assert.deepEqual(buckets, { bounds: [0.1, 1, Number.POSITIVE_INFINITY], counts: [3, 6, 8] });
  assert.deepEqual(bucketsOf(parsePrometheusText(VLLM), 'h', { path: 'a' })?.counts, [1, 4, 5]);
  assert.equal(bucketsOf(parsePrometheusText(VLLM), 'nope'), null);
});

test('text that is not Prometheus exposition is rejected with its line number', () => {
  assert.throws(() => parsePrometheusText('ok 1\n<html><body>502 Bad Gateway</body></html>\n'), /line 2 is not Prometheus text/);
  assert.throws(() => parsePrometheusText('m{a="1"} one'), /not a number/);
  assert.throws(() => parsePrometheusText('m{a="1} 2'), /not closed/);
});
