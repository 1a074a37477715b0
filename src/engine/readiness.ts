/*
 * Readiness as a state machine an operator can watch:
 *   starting -> loading -> healthy (/health 200) -> serving (/v1/models lists the served name AND a
 *   one-token completion answers).
 * Each stage has its own timeout (a TimeoutError); the engine dying or restarting at any point fails at
 * once (an EngineError with its last log lines and a diagnosis). The target (container or process) and the
 * clock are parameters, so the transitions are unit-tested with fakes and run for real against dockerd.
 */

import { EngineError, TimeoutError } from '../core/errors.js';
import { redactSecrets } from '../core/log.js';
import { diagnose, type Diagnosis } from './diagnose.js';
import type { StageTimeouts } from './kinds.js';

export type ReadinessState = 'starting' | 'loading' | 'healthy' | 'serving';
export type EngineState = 'pulling' | ReadinessState;

export const READINESS_ORDER: readonly ReadinessState[] = ['starting', 'loading', 'healthy', 'serving'];

export interface TargetState {
  running: boolean;
  restartCount: number;
  exitCode?: number | null;
  /** Docker's State.Status, or 'running'/'exited' for a process. */
  status: string;
  /** Killed by the kernel for using too much host memory (Docker's State.OOMKilled). */
  oomKilled?: boolean;
}

/** 'down': nothing answers; 'loading': the server answers but not 200; 'ok': 200. */
export type HealthAnswer = 'down' | 'loading' | 'ok';

export interface ReadinessTarget {
  inspect(): Promise<TargetState>;
  /** Log lines that arrived since the last call. */
  drainLogLines(): string[];
  /** The last n lines of the engine's log, for a failure report. */
  lastLogLines(n: number): Promise<string[]>;
  health(): Promise<HealthAnswer>;
  servedModels(): Promise<string[]>;
  /** Resolves when a one-token completion answers; rejects with the reason otherwise. */
  completeOneToken(): Promise<void>;
}

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
      signal?.addEventListener('abort', done, { once: true });
    }),
};

export interface ReadinessEvent {
  state: ReadinessState;
  /** Milliseconds since readiness began. */
  elapsedMs: number;
  /** What the logs say about progress, e.g. "Loading safetensors checkpoint shards 1/2". */
  detail?: string;
  percent?: number;
}

export interface ReadinessOptions {
  servedName: string;
  timeouts: StageTimeouts;
  pollMs?: number;
  clock?: Clock;
  onProgress?: (event: ReadinessEvent) => void;
  signal?: AbortSignal;
  /** Describes the engine in messages: "engine container cs-llm-engine-ab12". */
  label?: string;
}

export interface ReadinessResult {
  elapsedMs: number;
  states: ReadinessState[];
}

/** Lines that show the engine has begun downloading or loading weights. */
const LOADING_LINE =
  /Loading safetensors|Loading (model )?weights|Starting to load model|load_model|Downloading|Fetching \d+ files|\.(safetensors|bin|json):\s+\d+%|Loading pt checkpoint|Model loading took|init engine|Initializing (a V1 )?LLM engine|Loading checkpoint|Capturing CUDA graph|torch\.compile|Compiling a graph/i;

export interface LogProgress {
  loading: boolean;
  detail?: string;
  percent?: number;
}

/** Pure: what one log line says about loading progress. */
export function progressFromLogLine(line: string): LogProgress {
  const loading = LOADING_LINE.test(line);
  const shards = line.match(/Loading (?:safetensors|pt) checkpoint shards:\s*(\d+)%.*?(\d+)\/(\d+)/i);
  if (shards) {
    return { loading: true, percent: Number(shards[1]), detail: `loading checkpoint shards ${shards[2]}/${shards[3]}` };
  }
  // huggingface_hub's tqdm bars: "model-00001-of-00002.safetensors:  45%|####5 | 2.23G/4.97G [...]"
  const file = line.match(/(\S+\.(?:safetensors|bin|json)):\s+(\d+)%/i);
  if (file) return { loading: true, percent: Number(file[2]), detail: `downloading ${file[1]!.split('/').pop()}` };
  const download = line.match(/^(.*?(?:Downloading|Fetching)[^:]*?):\s*(\d+)%/i);
  if (download) return { loading: true, percent: Number(download[2]), detail: download[1]!.trim().slice(0, 80) };
  if (/Model loading took/i.test(line)) return { loading: true, detail: 'weights loaded' };
  const graphs = line.match(/Capturing CUDA graph[^:]*:\s*(\d+)%/i);
  if (graphs) return { loading: true, percent: Number(graphs[1]), detail: 'capturing CUDA graphs' };
  if (/Capturing CUDA graph/i.test(line)) return { loading: true, detail: 'capturing CUDA graphs' };
  if (/torch\.compile|Compiling a graph/i.test(line)) return { loading: true, detail: 'compiling (torch.compile)' };
  if (loading)
    return {
      loading: true,
      detail: line
        .replace(/^.*?\]\s*/, '')
        .trim()
        .slice(0, 80),
    };
  return { loading: false };
}

export const FAILURE_LOG_LINES = 50;

/** An engine that died while starting; `diagnosis` and `lines` let `up` act on what it said (retry with the context that fits). */
export class EngineDiedError extends EngineError {
  constructor(
    message: string,
    readonly diagnosis: Diagnosis | null,
    readonly lines: string[],
    options: ConstructorParameters<typeof EngineError>[1],
  ) {
    super(message, options);
  }
}

/** The error for an engine that died while starting: last log lines, and a diagnosis when one matches. */
export function engineDiedError(headline: string, lines: string[], diagnosis: Diagnosis | null, hint?: string): EngineDiedError {
  const message = diagnosis ? `${headline}: ${diagnosis.summary}` : hint ? `${headline}: ${hint}` : headline;
  return new EngineDiedError(message, diagnosis, lines, {
    next: diagnosis?.fix ?? 'Read the log lines above; cs-llm logs shows more while the engine runs.',
    details: logDetails(lines),
  });
}

/** Log lines for an error report, with anything that looks like a token redacted (errors get pasted around). */
export function logDetails(lines: string[]): string[] {
  return [`last ${lines.length} log line(s):`, ...lines.map((l) => `| ${redactSecrets(l)}`)];
}

/** Why an engine may have exited when its logs say nothing we recognise. */
export function exitHint(state: TargetState): string | undefined {
  if (state.oomKilled)
    return 'the kernel killed it for using too much host memory (RAM, not GPU memory); free memory or pick a smaller --model';
  if (state.exitCode === 137 || state.exitCode === 143 || state.exitCode === 0) {
    return 'it was stopped from outside (docker stop or kill, a dockerd restart) or stopped by itself';
  }
  return undefined;
}

export async function waitForReady(target: ReadinessTarget, options: ReadinessOptions): Promise<ReadinessResult> {
  const clock = options.clock ?? realClock;
  const pollMs = options.pollMs ?? 500;
  const label = options.label ?? 'engine';
  const began = clock.now();
  const initial = await target.inspect();
  const initialRestarts = initial.restartCount;
  let state = 'starting' as ReadinessState;
  let stageBegan = began;
  const states: ReadinessState[] = ['starting'];
  let detail: string | undefined;
  let percent: number | undefined;
  let lastCompletionError = '';
  let lastModels: string[] = [];

  const emit = () => options.onProgress?.({ state, elapsedMs: clock.now() - began, detail, percent });
  const enter = (next: ReadinessState) => {
    if (next === state) return;
    state = next;
    stageBegan = clock.now();
    states.push(next);
    if (next !== 'loading') {
      detail = undefined;
      percent = undefined;
    }
    emit();
  };
  const died = async (headline: string, hint?: string) => {
    const lines = await target.lastLogLines(FAILURE_LOG_LINES).catch(() => [] as string[]);
    return engineDiedError(headline, lines, diagnose(lines), hint);
  };
  emit();

  for (;;) {
    if (options.signal?.aborted) throw new EngineError(`${label}: start cancelled while ${state}`);
    const now = await target.inspect();
    if (now.restartCount > initialRestarts) {
      throw await died(`${label} crashed while ${state} and Docker restarted it (restart count ${now.restartCount}): a crash loop`);
    }
    if (!now.running) {
      const code = now.exitCode === undefined || now.exitCode === null ? '' : ` with code ${now.exitCode}`;
      throw await died(`${label} exited${code} while ${state}`, exitHint(now));
    }

    let progressed = false;
    for (const line of target.drainLogLines()) {
      const p = progressFromLogLine(line);
      if (!p.loading) continue;
      if (state === 'starting') enter('loading');
      if (state === 'loading' && (p.detail !== detail || p.percent !== percent)) {
        detail = p.detail ?? detail;
        percent = p.percent;
        progressed = true;
      }
    }
    if (progressed && state === 'loading') emit();

    if (state === 'starting' || state === 'loading') {
      const health = await target.health();
      if (health === 'ok') enter('healthy');
      else if (health === 'loading' && state === 'starting') enter('loading');
    }
    if (state === 'healthy') {
      try {
        lastModels = await target.servedModels();
        if (lastModels.includes(options.servedName)) {
          await target.completeOneToken();
          enter('serving');
          return { elapsedMs: clock.now() - began, states };
        }
      } catch (err) {
        lastCompletionError = (err as Error).message;
      }
    }

    const inStage = clock.now() - stageBegan;
    const limit =
      state === 'starting' ? options.timeouts.startingMs : state === 'loading' ? options.timeouts.loadingMs : options.timeouts.servingMs;
    if (inStage >= limit) {
      const seconds = Math.round(limit / 1000);
      const lines = await target.lastLogLines(FAILURE_LOG_LINES).catch(() => [] as string[]);
      const why =
        state === 'starting'
          ? 'it showed no sign of loading'
          : state === 'loading'
            ? `/health did not answer 200${detail ? ` (last progress: ${detail})` : ''}`
            : lastModels.includes(options.servedName)
              ? `a one-token completion did not answer${lastCompletionError ? ` (${lastCompletionError})` : ''}`
              : `/v1/models does not list "${options.servedName}" (it lists: ${lastModels.join(', ') || 'nothing'})`;
      throw new TimeoutError(`${label} still ${state} after ${seconds} s: ${why}`, limit, {
        next:
          state === 'loading'
            ? 'A first start downloads the weights; watch cs-llm logs -f, and raise the limit if the network is slow.'
            : 'Watch cs-llm logs -f to see what the engine is doing.',
        details: logDetails(lines),
      });
    }
    await clock.sleep(pollMs, options.signal);
  }
}
