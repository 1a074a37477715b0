import { test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { clientFor, eventually, metricValue, simFor } from './harness.js';

const ask = { model: 'cs-llm-sim', messages: [{ role: 'user' as const, content: 'Hello there' }] };

test('a 429 fault answers with Retry-After: 1 and an error body the client understands', async (t) => {
  const sim = await simFor(t, { fail429Rate: 1 });
  const err = await clientFor(sim)
    .chat.completions.create(ask)
    .catch((e: unknown) => e);
  assert.ok(err instanceof OpenAI.RateLimitError);
  assert.equal(err.status, 429);
  assert.equal(err.headers?.get('retry-after'), '1');
  assert.equal(sim.stats().faults.fail429, 1);
});

test('a 503 fault answers with Retry-After: 1', async (t) => {
  const sim = await simFor(t, { fail503Rate: 1 });
  const err = await clientFor(sim)
    .chat.completions.create({ ...ask, stream: true })
    .catch((e: unknown) => e);
  assert.ok(err instanceof OpenAI.APIError);
  assert.equal(err.status, 503);
  assert.equal(err.headers?.get('retry-after'), '1');
});

test('a 500 fault answers 500 without Retry-After', async (t) => {
  const sim = await simFor(t, { fail500Rate: 1 });
  const err = await clientFor(sim)
    .chat.completions.create(ask)
    .catch((e: unknown) => e);
  assert.ok(err instanceof OpenAI.InternalServerError);
  assert.equal(err.status, 500);
  assert.equal(err.headers?.get('retry-after'), null);
});

test('a hang fault never answers, so the client times out, and the simulator lets go when the client does', async (t) => {
  const sim = await simFor(t, { hangRate: 1 });
  const err = await clientFor(sim, { timeout: 500 })
    .chat.completions.create(ask)
    .catch((e: unknown) => e);
  assert.ok(err instanceof OpenAI.APIConnectionTimeoutError, `got ${String(err)}`);
  assert.equal(sim.stats().faults.hang, 1);
  await eventually(() => sim.stats().hanging === 0, 'the hung request to be released');
});

test('close() ends hung requests instead of waiting for them', async (t) => {
  const sim = await simFor(t, { hangRate: 1 });
  const pending = clientFor(sim)
    .chat.completions.create(ask)
    .catch((e: unknown) => e);
  await eventually(() => sim.stats().hanging === 1, 'the request to hang');
  await sim.close();
  assert.ok((await pending) instanceof OpenAI.APIConnectionError);
});

test('a die-mid-stream fault sends some chunks and then drops the connection, so stream iteration throws', async (t) => {
  const sim = await simFor(t, { dieMidStreamRate: 1 });
  const stream = await clientFor(sim).chat.completions.create({ ...ask, stream: true });
  let text = '';
  const err = await (async () => {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  })().catch((e: unknown) => e);
  assert.ok(err instanceof Error, 'the iteration should have thrown');
  assert.ok(text.length > 0, 'some content should have arrived first');
  assert.ok(!/conversation [0-9a-f]{6}\)\.$/.test(text), 'the reply should be cut short');

  const whole = await clientFor(sim)
    .chat.completions.create(ask)
    .catch((e: unknown) => e);
  assert.ok(whole instanceof OpenAI.APIConnectionError, 'a non-streaming request loses its connection too');
  assert.equal(sim.stats().faults.dieMidStream, 2);
});

test("/health answers 503 while the model loads, then 200 with an empty body, and the log says so in vLLM's words", async (t) => {
  const lines: string[] = [];
  const sim = await simFor(t, { loadTimeMs: 400, log: (line) => lines.push(line) });
  const early = await fetch(`${sim.url}/health`);
  assert.equal(early.status, 503);
  assert.ok(!lines.some((l) => l.includes('Uvicorn running')), 'not running yet while loading');
  const earlyApi = await clientFor(sim)
    .chat.completions.create(ask)
    .catch((e: unknown) => e);
  assert.ok(earlyApi instanceof OpenAI.APIError && earlyApi.status === 503);

  await eventually(async () => (await fetch(`${sim.url}/health`)).status === 200, '/health to answer 200');
  const ready = await fetch(`${sim.url}/health`);
  assert.equal(await ready.text(), '');
  const loading = lines.findIndex((l) => l.includes('Loading safetensors checkpoint shards:   0% Completed | 0/4'));
  const loaded = lines.findIndex((l) => l.includes('Loading safetensors checkpoint shards: 100% Completed | 4/4'));
  const running = lines.findIndex((l) => l === `INFO:     Uvicorn running on ${sim.url} (Press CTRL+C to quit)`);
  assert.ok(loading >= 0 && loading < loaded && loaded < running, lines.join('\n'));
  assert.ok(lines.some((l) => /^INFO \d\d-\d\d \d\d:\d\d:\d\d \[default_loader\.py:\d+\] Loading weights took \d+\.\d\d seconds$/.test(l)));
  const completion = await clientFor(sim).chat.completions.create(ask);
  assert.equal(completion.choices[0]!.finish_reason, 'stop');
});

test("/metrics uses vLLM's names, and the token counters and histograms move with each request", async (t) => {
  const sim = await simFor(t, { servedModelNames: ['m1'] });
  const scrape = async () => (await fetch(`${sim.url}/metrics`)).text();
  const before = await scrape();
  for (const name of [
    'vllm:num_requests_running',
    'vllm:num_requests_waiting',
    'vllm:gpu_cache_usage_perc',
    'vllm:kv_cache_usage_perc',
    'vllm:prompt_tokens_total',
    'vllm:generation_tokens_total',
    'vllm:time_to_first_token_seconds_bucket',
    'vllm:time_to_first_token_seconds_sum',
    'vllm:time_to_first_token_seconds_count',
    'vllm:e2e_request_latency_seconds_bucket',
    'vllm:e2e_request_latency_seconds_sum',
    'vllm:e2e_request_latency_seconds_count',
  ]) {
    assert.notEqual(metricValue(before, name, 'model_name="m1"'), undefined, `${name} missing`);
  }
  assert.equal(metricValue(before, 'vllm:prompt_tokens_total'), 0);

  const completion = await clientFor(sim).chat.completions.create({ ...ask, model: 'm1' });
  const after = await scrape();
  assert.equal(metricValue(after, 'vllm:prompt_tokens_total'), completion.usage!.prompt_tokens);
  assert.equal(metricValue(after, 'vllm:generation_tokens_total'), completion.usage!.completion_tokens);
  assert.equal(metricValue(after, 'vllm:time_to_first_token_seconds_count'), 1);
  assert.equal(metricValue(after, 'vllm:e2e_request_latency_seconds_count'), 1);
  assert.equal(metricValue(after, 'vllm:e2e_request_latency_seconds_bucket', 'le="+Inf"'), 1);
  assert.equal(metricValue(after, 'vllm:request_success_total', 'finished_reason="stop"'), 1);
});

test('requests beyond --max-num-seqs wait: the running and waiting gauges show it, and aborted clients free their slots', async (t) => {
  const sim = await simFor(t, { maxNumSeqs: 1, tokensPerSecond: 20 });
  const client = clientFor(sim);
  const scrape = async () => (await fetch(`${sim.url}/metrics`)).text();
  const controllers = [new AbortController(), new AbortController(), new AbortController()];
  const streams = controllers.map((controller) =>
    client.chat.completions
      .create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'count to 500' }], stream: true }, { signal: controller.signal })
      .then(async (stream) => {
        for await (const chunk of stream) void chunk;
      })
      .catch((e: unknown) => e),
  );

  let seen = '';
  await eventually(async () => {
    seen = await scrape();
    return metricValue(seen, 'vllm:num_requests_running') === 1 && metricValue(seen, 'vllm:num_requests_waiting') === 2;
  }, 'one running and two waiting requests');
  assert.ok(metricValue(seen, 'vllm:kv_cache_usage_perc')! > 0);

  for (const controller of controllers) controller.abort();
  await Promise.all(streams);
  await eventually(async () => {
    const text = await scrape();
    return metricValue(text, 'vllm:num_requests_running') === 0 && metricValue(text, 'vllm:num_requests_waiting') === 0;
  }, 'the slots to be free again');
  assert.equal(sim.stats().aborted, 3);
  assert.equal(metricValue(await scrape(), 'vllm:request_success_total', 'finished_reason="abort"'), 3);
  // The slot is usable again at once.
  const after = await client.chat.completions.create({ model: 'cs-llm-sim', messages: [{ role: 'user', content: 'count to 3' }] });
  assert.equal(after.choices[0]!.message.content, '1 2 3');
});
