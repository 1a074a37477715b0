/** @jsxRuntime automatic */
/** @jsxImportSource react */
// (tsx applies the root tsconfig's react-jsx only to src/; the pragmas give test files the same JSX runtime.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { render } from 'ink-testing-library';
import { formatPull, initialViewState, plainReporter, progressBar, reduceView, type ProgressViewState } from '../../src/cli/progress.js';
import { ProgressView } from '../../src/cli/progress-view.js';
import type { UpProgress } from '../../src/engine/up.js';

const pull = (downloadedBytes: number, totalBytes: number): UpProgress => ({
  stage: 'pulling',
  pull: {
    image: 'vllm/vllm-openai:v1',
    layers: 3,
    layersDone: totalBytes > 0 && downloadedBytes === totalBytes ? 3 : 1,
    downloadedBytes,
    totalBytes,
    status: 'Downloading',
  },
});

const events: UpProgress[] = [
  { stage: 'plan', message: 'vllm engine, model m (context 8192, 4 sequences), GPUs: 0: RTX 4090' },
  pull(0, 0),
  pull(512 * 1024 ** 2, 2 * 1024 ** 3),
  pull(2 * 1024 ** 3, 2 * 1024 ** 3),
  { stage: 'readiness', state: 'starting', elapsedMs: 0 },
  { stage: 'readiness', state: 'loading', elapsedMs: 4000, detail: 'loading checkpoint shards 1/2', percent: 50 },
  { stage: 'readiness', state: 'loading', elapsedMs: 6000, detail: 'loading checkpoint shards 2/2', percent: 100 },
  { stage: 'readiness', state: 'healthy', elapsedMs: 9000 },
  { stage: 'readiness', state: 'serving', elapsedMs: 9500 },
];

test('the view keeps one live line per step and moves finished steps above it', () => {
  let state: ProgressViewState = initialViewState;
  state = reduceView(state, events[0]!);
  state = reduceView(state, events[2]!);
  assert.equal(state.current?.label, 'pulling vllm/vllm-openai:v1: 512.0 MiB / 2.0 GiB, 1/3 layers');
  assert.equal(state.current?.fraction, 0.25);
  state = reduceView(state, events[3]!);
  assert.equal(state.done.length, 1); // still the same pull step
  for (const e of events.slice(4, 6)) state = reduceView(state, e);
  assert.deepEqual(state.done.slice(1), [
    'pulling vllm/vllm-openai:v1: 2.0 GiB / 2.0 GiB, 3/3 layers',
    'starting: waiting for the engine to begin loading [0 s]',
  ]);
  assert.equal(state.current?.label, 'loading the model: loading checkpoint shards 1/2 (50%) [4 s]');
  for (const e of events.slice(6)) state = reduceView(state, e);
  assert.equal(state.current, null);
  assert.equal(state.done.at(-1), 'serving [10 s]');
});

test('the terminal view shows finished steps, then the live step with a bar', () => {
  let state: ProgressViewState = initialViewState;
  for (const e of events.slice(0, 3)) state = reduceView(state, e);
  const { lastFrame, unmount } = render(<ProgressView state={state} color={false} />);
  const frame = lastFrame() ?? '';
  assert.match(frame, /✓ vllm engine, model m/);
  assert.match(frame, /… \[######------------------\] pulling vllm\/vllm-openai:v1: 512\.0 MiB \/ 2\.0 GiB/);
  unmount();
});

test('plain progress prints each stage change at once and repeats within a stage only after the interval', () => {
  const lines: string[] = [];
  let now = 0;
  const reporter = plainReporter(
    (line) => lines.push(line),
    { color: false },
    5000,
    () => now,
  );
  reporter.event(events[1]!);
  now = 1000;
  reporter.event(events[2]!); // same stage, too soon
  now = 6000;
  reporter.event(events[3]!);
  for (const e of events.slice(4)) reporter.event(e);
  assert.deepEqual(lines, [
    'pulling vllm/vllm-openai:v1: Downloading, 1/3 layers',
    'pulling vllm/vllm-openai:v1: 2.0 GiB / 2.0 GiB, 3/3 layers',
    'starting: waiting for the engine to begin loading [0 s]',
    'loading the model: loading checkpoint shards 1/2 (50%) [4 s]',
    'healthy: /health answers 200; checking /v1/models and a one-token completion [9 s]',
    'serving [10 s]',
  ]);
});

test('the progress bar is bounded', () => {
  assert.equal(progressBar(0.5, 4), '[##--]');
  assert.equal(progressBar(2, 4), '[####]');
  assert.equal(progressBar(-1, 4), '[----]');
  assert.equal(
    formatPull({ image: 'i', layers: 0, layersDone: 0, downloadedBytes: 0, totalBytes: 0, status: 'Pulling' }),
    'pulling i: Pulling',
  );
});

test("the terminal view shows an engine's log text in its steps without control characters", () => {
  let state: ProgressViewState = initialViewState;
  state = reduceView(state, { stage: 'note', message: 'engine said \u001b]0;pwned\u0007hi\nthere' });
  state = reduceView(state, { stage: 'readiness', state: 'loading', elapsedMs: 1000, detail: 'shard \u001b[2J1/2\u009b' });
  assert.deepEqual(state.done, ['engine said ]0;pwnedhi there']);
  assert.equal(state.current?.label, 'loading the model: shard [2J1/2 [1 s]');
  const { lastFrame, unmount } = render(<ProgressView state={state} color={false} />);
  assert.doesNotMatch(lastFrame() ?? '', /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/);
  unmount();
});
