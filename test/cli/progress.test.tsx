/** @jsxRuntime automatic */
/** @jsxImportSource react */
// (tsx applies the root tsconfig's react-jsx only to src/; the pragmas give test files the same JSX runtime.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { render } from 'ink-testing-library';
import {
  bundleProgress,
  createProgressReporter,
  formatPull,
  initialViewState,
  plainReporter,
  progressBar,
  pullProgress,
  reduceView,
  upProgress,
  type ProgressViewState,
} from '../../src/cli/progress.js';
import { createOutput } from '../../src/cli/output.js';
import type { BundleProgress } from '../../src/bundle/progress.js';
import type { GgufPullProgress } from '../../src/models/pull.js';
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

/** The view state after up's events, as the terminal view reduces them. */
function view(state: ProgressViewState, event: UpProgress, now = 0): ProgressViewState {
  return upProgress.updates(event).reduce((s, u) => reduceView(s, u, now), state);
}

test('the view keeps one live line per step and moves finished steps above it', () => {
  let state: ProgressViewState = initialViewState;
  state = view(state, events[0]!);
  state = view(state, events[2]!);
  assert.equal(state.current?.text, 'pulling vllm/vllm-openai:v1: 512.0 MiB / 2.0 GiB, 1/3 layers');
  assert.equal(state.current?.fraction, 0.25);
  state = view(state, events[3]!);
  assert.equal(state.done.length, 1); // still the same pull step
  for (const e of events.slice(4, 6)) state = view(state, e);
  assert.deepEqual(state.done.slice(1), [
    'pulling vllm/vllm-openai:v1: 2.0 GiB / 2.0 GiB, 3/3 layers',
    'starting: waiting for the engine to begin loading [0 s]',
  ]);
  assert.equal(state.current?.text, 'loading the model: loading checkpoint shards 1/2 (50%) [4 s]');
  for (const e of events.slice(6)) state = view(state, e);
  assert.equal(state.current, null);
  assert.equal(state.done.at(-1), 'serving [10 s]');
});

test('the terminal view shows finished steps, then the live step with a bar', () => {
  let state: ProgressViewState = initialViewState;
  for (const e of events.slice(0, 3)) state = view(state, e);
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
  const send = (e: UpProgress) => reporter.update(upProgress.updates(e));
  send(events[1]!);
  now = 1000;
  send(events[2]!); // same stage, too soon
  now = 6000;
  send(events[3]!);
  for (const e of events.slice(4)) send(e);
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
  state = view(state, { stage: 'note', message: 'engine said \u001b]0;pwned\u0007hi\nthere' });
  state = view(state, { stage: 'readiness', state: 'loading', elapsedMs: 1000, detail: 'shard \u001b[2J1/2\u009b' });
  assert.deepEqual(state.done, ['engine said ]0;pwnedhi there']);
  assert.equal(state.current?.text, 'loading the model: shard [2J1/2 [1 s]');
  const { lastFrame, unmount } = render(<ProgressView state={state} color={false} />);
  assert.doesNotMatch(lastFrame() ?? '', /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/);
  unmount();
});

test('one reporter for up, bundle and models pull: a transfer is a live step with a bar, its size and its rate', () => {
  // models pull, resumed from 400 of 1000 bytes: the rate counts only what this run fetched.
  const pull = pullProgress();
  const pullEvents: GgufPullProgress[] = [
    { type: 'start', url: 'https://hub/x.gguf', path: '/m/x.gguf', totalBytes: 1000, resumeFrom: 400 },
    { type: 'bytes', doneBytes: 400, totalBytes: 1000 },
    { type: 'bytes', doneBytes: 700, totalBytes: 1000 },
  ];
  let state: ProgressViewState = initialViewState;
  pullEvents.forEach((e, i) => {
    for (const u of pull.updates(e)) state = reduceView(state, u, i * 1000);
  });
  assert.deepEqual(state.done, ['downloading https://hub/x.gguf to /m/x.gguf (continuing the part file from 400 B)']);
  assert.equal(state.current?.text, 'downloaded 70% (700 B of 1000 B)');
  assert.equal(state.current?.fraction, 0.7);
  assert.equal(state.current?.rate, '300 B/s', '300 bytes in the second since the transfer began, the resumed 400 not counted');
  const { lastFrame, unmount } = render(<ProgressView state={state} color={false} />);
  assert.match(lastFrame() ?? '', /… \[#################-------\] downloaded 70% \(700 B of 1000 B\) 300 B\/s/);
  unmount();
  state = pull.updates({ type: 'verifying', path: '/m/x.gguf' }).reduce((s, u) => reduceView(s, u, 3000), state);
  assert.deepEqual(state.done.at(-1), 'checking size and sha256', "the finished transfer's bar gives way to the next line");
  assert.equal(state.current, null);

  // bundle: the same transfer text, then the part's done line.
  const bundleEvents: BundleProgress[] = [
    { type: 'bytes', part: 'verify', label: 'verifying', doneBytes: 512, totalBytes: 2048 },
    { type: 'part-done', part: 'verify', message: 'every member matches' },
  ];
  state = initialViewState;
  for (const e of bundleEvents) for (const u of bundleProgress.updates(e)) state = reduceView(state, u);
  assert.deepEqual(state.done, ['done: every member matches']);
});

test('plain lines: a transfer at each 10% of its size, one without a size at most every interval', () => {
  const lines: string[] = [];
  let now = 0;
  const plain = plainReporter(
    (l) => lines.push(l),
    { color: false },
    5000,
    () => now,
  );
  const pull = pullProgress();
  plain.update(pull.updates({ type: 'start', url: 'https://hub/x.gguf', path: '/m/x.gguf', totalBytes: 1000, resumeFrom: 0 }));
  for (let done = 0; done <= 1000; done += 25) plain.update(pull.updates({ type: 'bytes', doneBytes: done, totalBytes: 1000 }));
  assert.deepEqual(
    lines.slice(1),
    [0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100].map((p) => `downloaded ${p}% (${p * 10} B of 1000 B)`),
  );

  lines.length = 0;
  const image = (doneBytes: number): BundleProgress => ({
    type: 'bytes',
    part: 'load-image',
    label: 'loading image',
    doneBytes,
    totalBytes: null,
  });
  for (const [at, done] of [
    [0, 0],
    [1000, 10],
    [5000, 20],
    [6000, 30],
    [10_000, 40],
  ] as const) {
    now = at;
    plain.update(bundleProgress.updates(image(done)));
  }
  assert.deepEqual(lines, ['loading image 0 B', 'loading image 20 B', 'loading image 40 B']);
});

test("--json: the command's own events as NDJSON, byte counts only when a 10% step or a second passed", async () => {
  const lines: string[] = [];
  let now = 0;
  const reporter = await createProgressReporter(createOutput(), pullProgress(), {
    json: true,
    write: (l) => lines.push(l),
    now: () => now,
  });
  reporter.event({ type: 'start', url: 'u', path: 'p', totalBytes: 1000, resumeFrom: 0 });
  for (let done = 0; done <= 1000; done += 10) reporter.event({ type: 'bytes', doneBytes: done, totalBytes: 1000 });
  reporter.event({ type: 'verifying', path: 'p' });
  const events = lines.map((l) => (JSON.parse(l) as { type: string; event: { type: string; doneBytes?: number } }).event);
  assert.equal(events[0]!.type, 'start');
  assert.deepEqual(
    events.filter((e) => e.type === 'bytes').map((e) => e.doneBytes),
    [0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000],
  );
  assert.equal(events.at(-1)!.type, 'verifying');
  assert.ok(lines.every((l) => JSON.parse(l).type === 'progress'));
});
