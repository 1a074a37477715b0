/*
 * How `up` shows its progress. Pure parts: a view state reduced from progress events, and the text of
 * each line. The reporter picks the channel: an Ink view on a terminal, plain lines (at most one every few
 * seconds for the same stage) otherwise, NDJSON on stderr with --json. Progress always goes to stderr
 * when stdout is not a terminal, so stdout stays the parseable result.
 */

import type { UpProgress } from '../engine/up.js';
import type { PullProgress } from '../engine/pull.js';
import type { ReadinessEvent } from '../engine/readiness.js';
import { terminalLine } from '../core/terminal-text.js';
import { formatBytes, paint, type Output } from './output.js';

export interface ProgressViewState {
  /** Finished steps, printed once. */
  done: string[];
  /** The step in progress. */
  current: { label: string; detail?: string; fraction?: number } | null;
}

export const initialViewState: ProgressViewState = { done: [], current: null };

export function progressBar(fraction: number, width = 24): string {
  const clamped = Math.max(0, Math.min(1, fraction));
  const full = Math.round(clamped * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

export function pullFraction(p: PullProgress): number | undefined {
  return p.totalBytes > 0 ? p.downloadedBytes / p.totalBytes : undefined;
}

export function formatPull(p: PullProgress): string {
  const bytes = p.totalBytes > 0 ? `${formatBytes(p.downloadedBytes)} / ${formatBytes(p.totalBytes)}` : p.status;
  const layers = p.layers > 0 ? `, ${p.layersDone}/${p.layers} layers` : '';
  return `pulling ${p.image}: ${bytes}${layers}`;
}

const STATE_TEXT: Record<ReadinessEvent['state'], string> = {
  starting: 'starting: waiting for the engine to begin loading',
  loading: 'loading the model',
  healthy: 'healthy: /health answers 200; checking /v1/models and a one-token completion',
  serving: 'serving',
};

export function formatReadiness(e: ReadinessEvent): string {
  const seconds = `${Math.round(e.elapsedMs / 1000)} s`;
  const detail = e.detail
    ? `: ${e.detail}${e.percent !== undefined && !e.detail.includes('%') ? ` (${e.percent}%)` : ''}`
    : e.percent !== undefined
      ? `: ${e.percent}%`
      : '';
  return `${STATE_TEXT[e.state]}${detail} [${seconds}]`;
}

/** Pure: the next view state for a progress event (its labels one line each, without control characters: they quote engine logs). */
export function reduceView(state: ProgressViewState, event: UpProgress): ProgressViewState {
  const next = reduceViewRaw(state, event);
  const current = next.current && { ...next.current, label: terminalLine(next.current.label) };
  const done = next.done === state.done ? next.done : [...state.done, ...next.done.slice(state.done.length).map(terminalLine)];
  return { done, current };
}

function reduceViewRaw(state: ProgressViewState, event: UpProgress): ProgressViewState {
  const finishCurrent = (): string[] => (state.current ? [...state.done, state.current.label] : state.done);
  switch (event.stage) {
    case 'plan':
    case 'note':
      return { done: [...finishCurrent(), event.message], current: null };
    case 'pulling': {
      const fraction = pullFraction(event.pull);
      const same = state.current?.label.startsWith('pulling ');
      return {
        done: same ? state.done : finishCurrent(),
        current: { label: formatPull(event.pull), ...(fraction !== undefined ? { fraction } : {}) },
      };
    }
    case 'readiness': {
      const label = formatReadiness(event);
      const sameState = state.current?.label.startsWith(STATE_TEXT[event.state].split(':')[0]!);
      if (event.state === 'serving') return { done: [...finishCurrent(), label], current: null };
      const fraction = event.percent !== undefined ? event.percent / 100 : undefined;
      return { done: sameState ? state.done : finishCurrent(), current: { label, ...(fraction !== undefined ? { fraction } : {}) } };
    }
  }
}

export interface ProgressReporter {
  event(event: UpProgress): void;
  /** Stop rendering (before the result or an error is printed). */
  close(): void;
}

interface ReporterOptions {
  json: boolean;
  /** Minimum gap between two plain lines for the same stage. */
  plainIntervalMs?: number;
  now?: () => number;
}

/** NDJSON on stderr: one object per event (pull events at most once a second). */
function jsonReporter(stderr: NodeJS.WritableStream, now: () => number): ProgressReporter {
  let lastPull = 0;
  return {
    event(event) {
      if (event.stage === 'pulling') {
        if (now() - lastPull < 1000) return;
        lastPull = now();
      }
      stderr.write(`${JSON.stringify({ type: 'progress', ...event })}\n`);
    },
    close() {},
  };
}

/** Plain lines: every change of stage at once, progress within a stage at most every interval. */
export function plainReporter(
  write: (line: string) => void,
  output: Pick<Output, 'color'>,
  intervalMs = 5000,
  now: () => number = Date.now,
): ProgressReporter {
  let lastKey = '';
  let lastAt = -Infinity;
  let lastLine = '';
  return {
    event(event) {
      const key = event.stage === 'readiness' ? `readiness:${event.state}` : event.stage;
      const line =
        event.stage === 'pulling' ? formatPull(event.pull) : event.stage === 'readiness' ? formatReadiness(event) : event.message;
      if (line === lastLine) return;
      const changed = key !== lastKey || event.stage === 'note' || event.stage === 'plan';
      if (!changed && now() - lastAt < intervalMs) return;
      lastKey = key;
      lastAt = now();
      lastLine = line;
      const styled = event.stage === 'readiness' && event.state === 'serving' ? paint(output, 'green', line) : line;
      write(styled);
    },
    close() {},
  };
}

export async function createProgressReporter(output: Output, options: ReporterOptions): Promise<ProgressReporter> {
  const now = options.now ?? Date.now;
  if (options.json) return jsonReporter(process.stderr, now);
  if (output.isTTY && process.stderr.isTTY) {
    // Loaded only on a terminal: Ink and React are not needed to print plain lines.
    const { inkReporter } = await import('./progress-view.js');
    return inkReporter(output);
  }
  return plainReporter((line) => output.err(line), output, options.plainIntervalMs ?? 5000, now);
}
