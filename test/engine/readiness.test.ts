import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineError, TimeoutError } from '../../src/core/errors.js';
import {
  progressFromLogLine,
  waitForReady,
  type Clock,
  type HealthAnswer,
  type ReadinessEvent,
  type ReadinessTarget,
  type TargetState,
} from '../../src/engine/readiness.js';

/** Looks like a Hugging Face token; built at run time so secret scanners do not flag this file. */
const FAKE_HF_TOKEN = `hf_${'abcdefghijklm'.repeat(2)}`;

/** A clock whose sleep only moves time forward, so stage timeouts are exercised without waiting. */
function fakeClock(): Clock & { t: number } {
  const clock = { t: 0, now: () => clock.t, sleep: async (ms: number) => void (clock.t += ms) };
  return clock;
}

interface Script {
  /** What each poll sees, by tick; the last entry repeats. */
  ticks: Array<{ state?: Partial<TargetState>; logs?: string[]; health?: HealthAnswer; models?: string[]; completion?: 'ok' | string }>;
  lastLogs?: string[];
}

function scriptedTarget(script: Script): ReadinessTarget & { tick: number } {
  let tick = -1;
  const at = () => script.ticks[Math.min(Math.max(tick, 0), script.ticks.length - 1)]!;
  const target = {
    get tick() {
      return tick;
    },
    inspect: async (): Promise<TargetState> => {
      tick++;
      return { running: true, restartCount: 0, status: 'running', ...at().state };
    },
    drainLogLines: () => [...(script.ticks[tick]?.logs ?? [])],
    lastLogLines: async (n: number) => (script.lastLogs ?? []).slice(-n),
    health: async () => at().health ?? 'down',
    servedModels: async () => at().models ?? [],
    completeOneToken: async () => {
      const c = at().completion ?? 'ok';
      if (c !== 'ok') throw new Error(c);
    },
  };
  return target;
}

const timeouts = { startingMs: 10_000, loadingMs: 60_000, servingMs: 10_000 };

test('states go starting -> loading -> healthy -> serving, with the shard progress from the logs', async () => {
  const events: ReadinessEvent[] = [];
  const target = scriptedTarget({
    ticks: [
      { state: { restartCount: 0 } }, // the initial inspect
      { logs: ['INFO 11-29 starting api server'] },
      { logs: ['Loading safetensors checkpoint shards:  50% Completed | 1/2 [00:01<00:01,  1.00s/it]'] },
      { logs: ['Loading safetensors checkpoint shards: 100% Completed | 2/2 [00:02<00:00,  1.00s/it]'], health: 'loading' },
      { health: 'ok', models: ['m'] },
    ],
  });
  const result = await waitForReady(target, { servedName: 'm', timeouts, clock: fakeClock(), onProgress: (e) => events.push(e) });
  assert.deepEqual(result.states, ['starting', 'loading', 'healthy', 'serving']);
  assert.deepEqual([...new Set(events.map((e) => e.state))], ['starting', 'loading', 'healthy', 'serving']);
  const loading = events.filter((e) => e.state === 'loading' && e.percent !== undefined).map((e) => [e.percent, e.detail]);
  assert.deepEqual(loading, [
    [50, 'loading checkpoint shards 1/2'],
    [100, 'loading checkpoint shards 2/2'],
  ]);
});

test('a server that answers /health with 503 counts as loading even without log lines', async () => {
  const target = scriptedTarget({ ticks: [{}, { health: 'loading' }, { health: 'ok', models: ['m'] }] });
  const result = await waitForReady(target, { servedName: 'm', timeouts, clock: fakeClock() });
  assert.deepEqual(result.states, ['starting', 'loading', 'healthy', 'serving']);
});

test('serving needs the served name in /v1/models AND a one-token completion', async () => {
  const target = scriptedTarget({
    ticks: [
      {},
      { health: 'ok', models: ['other'] },
      { health: 'ok', models: ['m'], completion: 'engine busy' },
      { health: 'ok', models: ['m'] },
    ],
  });
  const result = await waitForReady(target, { servedName: 'm', timeouts, clock: fakeClock() });
  assert.equal(target.tick, 3);
  assert.deepEqual(result.states, ['starting', 'healthy', 'serving']);
});

test('an engine that exits fails at once with its last log lines and a diagnosis', async () => {
  const oom = 'torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB';
  const target = scriptedTarget({
    ticks: [
      {},
      { logs: ['Loading safetensors checkpoint shards:  50% Completed | 1/2'] },
      { state: { running: false, exitCode: 1, status: 'exited' } },
    ],
    lastLogs: ['INFO loading', oom],
  });
  const clock = fakeClock();
  await assert.rejects(waitForReady(target, { servedName: 'm', timeouts, clock, label: 'engine container x' }), (err: unknown) => {
    assert.ok(err instanceof EngineError && !(err instanceof TimeoutError));
    assert.match(err.message, /engine container x exited with code 1 while loading: the GPU ran out of memory/);
    assert.match(err.next!, /--context/);
    assert.ok(err.details.some((d) => d.includes(oom)));
    return true;
  });
  assert.equal(clock.t, 500); // one poll interval: no waiting for a stage timeout
});

test('a restart (rising restart count) is reported as a crash loop', async () => {
  const target = scriptedTarget({ ticks: [{ state: { restartCount: 1 } }, { state: { restartCount: 2 } }], lastLogs: ['boom'] });
  await assert.rejects(waitForReady(target, { servedName: 'm', timeouts, clock: fakeClock() }), (err: unknown) => {
    assert.ok(err instanceof EngineError);
    assert.match(err.message, /crashed while starting and Docker restarted it \(restart count 2\): a crash loop/);
    return true;
  });
});

test('each stage has its own timeout, and a timeout is a TimeoutError naming the stage', async () => {
  const neverLoads = scriptedTarget({ ticks: [{}] });
  await assert.rejects(waitForReady(neverLoads, { servedName: 'm', timeouts, clock: fakeClock() }), (err: unknown) => {
    assert.ok(err instanceof TimeoutError);
    assert.match(err.message, /still starting after 10 s/);
    assert.equal(err.timeoutMs, 10_000);
    return true;
  });
  const clock = fakeClock();
  const slowLoad = scriptedTarget({ ticks: [{}, { logs: ['Loading safetensors checkpoint shards:  0% Completed | 0/4'] }, {}] });
  await assert.rejects(waitForReady(slowLoad, { servedName: 'm', timeouts, clock }), (err: unknown) => {
    assert.ok(err instanceof TimeoutError);
    assert.match(err.message, /still loading after 60 s: \/health did not answer 200 \(last progress: loading checkpoint shards 0\/4\)/);
    return true;
  });
  // The loading limit runs from when loading began, not from the start.
  assert.ok(clock.t >= 60_000 && clock.t < 70_000);
  const wrongName = scriptedTarget({ ticks: [{}, { health: 'ok', models: ['other'] }] });
  await assert.rejects(waitForReady(wrongName, { servedName: 'm', timeouts, clock: fakeClock() }), /does not list "m" \(it lists: other\)/);
});

test('log lines are read for loading progress', () => {
  assert.deepEqual(progressFromLogLine('Loading safetensors checkpoint shards:  75% Completed | 3/4 [00:03<00:01]'), {
    loading: true,
    percent: 75,
    detail: 'loading checkpoint shards 3/4',
  });
  assert.equal(progressFromLogLine('model-00001-of-00002.safetensors Downloading: 42%|████').percent, 42);
  assert.equal(
    progressFromLogLine('INFO 11-29 [gpu_model_runner.py:1] Model loading took 9.3 GiB and 12.1 seconds').detail,
    'weights loaded',
  );
  assert.deepEqual(progressFromLogLine('model-00001-of-00002.safetensors:  45%|████▌     | 2.23G/4.97G [00:10<00:12, 215MB/s]'), {
    loading: true,
    percent: 45,
    detail: 'downloading model-00001-of-00002.safetensors',
  });
  assert.deepEqual(progressFromLogLine('Capturing CUDA graph shapes:  60%|██████    | 40/67 [00:03<00:02, 12.1it/s]'), {
    loading: true,
    percent: 60,
    detail: 'capturing CUDA graphs',
  });
  assert.equal(progressFromLogLine('INFO:     Started server process [1]').loading, false);
});

test('an engine killed for host memory, or stopped from outside, says so when its logs do not', async () => {
  const oom = scriptedTarget({
    ticks: [{}, { state: { running: false, exitCode: 137, oomKilled: true, status: 'exited' } }],
    lastLogs: ['INFO loading'],
  });
  await assert.rejects(
    waitForReady(oom, { servedName: 'm', timeouts, clock: fakeClock() }),
    /exited with code 137 while starting: the kernel killed it for using too much host memory/,
  );
  const stopped = scriptedTarget({
    ticks: [{}, { state: { running: false, exitCode: 143, status: 'exited' } }],
    lastLogs: ['INFO:     Shutting down (SIGTERM)'],
  });
  await assert.rejects(
    waitForReady(stopped, { servedName: 'm', timeouts, clock: fakeClock() }),
    /exited with code 143 while starting: it was stopped from outside/,
  );
});

test('a token that shows up in the log lines of a failure report is redacted', async () => {
  const target = scriptedTarget({
    ticks: [{}, { state: { running: false, exitCode: 1, status: 'exited' } }],
    lastLogs: [`using token ${FAKE_HF_TOKEN} for the download`, 'RuntimeError: boom'],
  });
  await assert.rejects(waitForReady(target, { servedName: 'm', timeouts, clock: fakeClock() }), (err: unknown) => {
    const text = (err as EngineError).details.join('\n');
    assert.ok(!text.includes(FAKE_HF_TOKEN));
    assert.match(text, /RuntimeError: boom/);
    return true;
  });
});
