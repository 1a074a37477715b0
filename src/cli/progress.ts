/*
 * How long commands show their progress: `up` (image pull, readiness), `bundle create|inspect|load` (its
 * parts) and `models pull` (the download). One reporter for all three: each command's events become
 * ProgressUpdates (the adapters below), and the reporter shows them on the channel that fits. On a
 * terminal: an Ink view (finished lines above, the live step with a bar and a rate below). Otherwise plain
 * lines on stderr: each new step at once, within a step at each 10% of a known size, else at most every 5 s.
 * With --json: the command's own events as NDJSON on stderr, byte counts at most once a second or per 10%.
 * Progress always goes to stderr, so stdout stays the parseable result.
 */

import type { BundleProgress } from '../bundle/progress.js';
import type { PullProgress } from '../engine/pull.js';
import type { ReadinessEvent } from '../engine/readiness.js';
import type { UpProgress } from '../engine/up.js';
import type { GgufPullProgress } from '../models/pull.js';
import { formatBytes, paint, type Output } from './output.js';
import { liveText, percentStep, type ProgressUpdate } from './progress-state.js';

export { initialViewState, progressBar, reduceView, type ProgressUpdate, type ProgressViewState } from './progress-state.js';

/** A command's events, turned into updates (the same for every channel) and into its NDJSON line. */
export interface ProgressAdapter<E> {
  updates(event: E): ProgressUpdate[];
  json(event: E): unknown;
}

export interface ProgressReporter<E> {
  event(event: E): void;
  /** Stop rendering (before the result or an error is printed). */
  close(): void;
}

// --- the three commands' events ---

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

/** `up`: each step keeps its line once done. A registry's layer totals grow as it goes, so a pull is a labelled step, not a transfer. */
export const upProgress: ProgressAdapter<UpProgress> = {
  updates(event) {
    switch (event.stage) {
      case 'plan':
      case 'note':
        return [{ kind: 'line', text: event.message }];
      case 'pulling': {
        const p = event.pull;
        return [
          {
            kind: 'live',
            key: 'pull',
            label: formatPull(p),
            keep: true,
            frequent: true,
            ...(p.totalBytes > 0 ? { fraction: p.downloadedBytes / p.totalBytes } : {}),
          },
        ];
      }
      case 'readiness':
        if (event.state === 'serving') return [{ kind: 'line', text: formatReadiness(event), green: true }];
        return [
          {
            kind: 'live',
            key: `readiness:${event.state}`,
            label: formatReadiness(event),
            keep: true,
            ...(event.percent !== undefined ? { fraction: event.percent / 100 } : {}),
          },
        ];
    }
  },
  json: (event) => ({ type: 'progress', ...event }),
};

/** `bundle`: a part's bytes while it runs, then its "done" line. */
export const bundleProgress: ProgressAdapter<BundleProgress> = {
  updates(event) {
    if (event.type === 'note') return [{ kind: 'line', text: event.message }];
    if (event.type === 'part-done') return [{ kind: 'line', text: `done: ${event.message}`, green: true }];
    return [
      {
        kind: 'live',
        key: `${event.part}:${event.label}`,
        label: event.label,
        transfer: { doneBytes: event.doneBytes, totalBytes: event.totalBytes },
        frequent: true,
      },
    ];
  },
  json: (event) => ({ type: 'progress', event }),
};

/** `models pull`: the download as a transfer whose rate leaves out the bytes a resumed part file already had. */
export function pullProgress(): ProgressAdapter<GgufPullProgress> {
  let fromBytes = 0;
  return {
    updates(event) {
      switch (event.type) {
        case 'checking':
          return [{ kind: 'line', text: event.message }];
        case 'start':
          fromBytes = event.resumeFrom;
          return [
            {
              kind: 'line',
              text: `downloading ${event.url} to ${event.path}${event.resumeFrom > 0 ? ` (continuing the part file from ${formatBytes(event.resumeFrom)})` : ''}`,
            },
          ];
        case 'bytes':
          return [
            {
              kind: 'live',
              key: 'download',
              label: 'downloaded',
              transfer: { doneBytes: event.doneBytes, totalBytes: event.totalBytes, fromBytes },
              frequent: true,
            },
          ];
        case 'verifying':
          return [{ kind: 'line', text: 'checking size and sha256' }];
      }
    },
    json: (event) => ({ type: 'progress', event }),
  };
}

// --- the channels ---

/**
 * When a frequent update of the same step is worth showing again: its 10% step advanced, it is complete, or
 * (no known size) `intervalMs` passed. Each new step, and anything not frequent, always is.
 */
function throttle(intervalMs: number, now: () => number) {
  let key = '';
  let at = -Infinity;
  let step: number | null = null;
  return (updates: ProgressUpdate[]): boolean => {
    const live =
      updates.length > 0 && updates.every((u) => u.kind === 'live') ? (updates.at(-1) as Extract<ProgressUpdate, { kind: 'live' }>) : null;
    const t = live?.transfer;
    const nextStep = t ? percentStep(t.doneBytes, t.totalBytes) : null;
    const show =
      !live ||
      live.key !== key ||
      (nextStep !== null ? step === null || nextStep > step : now() - at >= intervalMs) ||
      (t !== undefined && t.totalBytes !== null && t.doneBytes >= t.totalBytes && step !== 100);
    if (!show) return false;
    key = live?.key ?? '';
    at = now();
    step = nextStep;
    return true;
  };
}

/** Plain lines (no terminal): lines at once; a live step when it starts, then per the throttle; never the same text twice. */
export function plainReporter(
  write: (line: string) => void,
  output: Pick<Output, 'color'>,
  intervalMs = 5000,
  now: () => number = Date.now,
) {
  const worth = throttle(intervalMs, now);
  let lastLine = '';
  return {
    update(updates: ProgressUpdate[]) {
      for (const u of updates) {
        const text = u.kind === 'line' ? u.text : liveText(u);
        if (u.kind === 'live' && (text === lastLine || !worth([u]))) continue;
        if (u.kind === 'line') worth([u]);
        lastLine = text;
        write(u.kind === 'line' && u.green ? paint(output, 'green', text) : text);
      }
    },
    close() {},
  };
}

export interface ReporterOptions {
  json: boolean;
  /** Draw on a terminal; default: whether stderr is one. */
  tty?: boolean;
  /** Minimum gap between two plain lines of the same step without a known size. */
  plainIntervalMs?: number;
  now?: () => number;
  /** Where lines go, without their newline; default stderr (plain lines through output.err, JSON exactly as it is). */
  write?: (line: string) => void;
}

export async function createProgressReporter<E>(
  output: Output,
  adapter: ProgressAdapter<E>,
  options: ReporterOptions,
): Promise<ProgressReporter<E>> {
  const now = options.now ?? Date.now;
  if (options.json) {
    const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
    const worth = throttle(1000, now);
    return {
      event(event) {
        if (worth(adapter.updates(event))) write(JSON.stringify(adapter.json(event)));
      },
      close() {},
    };
  }
  const channel =
    (options.tty ?? Boolean(process.stderr.isTTY))
      ? // Loaded only on a terminal: Ink and React are not needed to print plain lines.
        (await import('./progress-view.js')).inkReporter(output.color, now)
      : plainReporter(options.write ?? ((line) => output.err(line)), output, options.plainIntervalMs ?? 5000, now);
  return {
    event: (event) => channel.update(adapter.updates(event)),
    close: () => channel.close(),
  };
}
