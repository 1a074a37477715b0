/*
 * What a progress display holds, pure: the updates every long command's events become (progress.ts), the
 * view state they reduce to (finished lines, and the step in progress), and the text of a transfer.
 * Shared by the terminal view (progress-view.tsx) and the plain and JSON reporters (progress.ts).
 */

import { terminalLine } from '../core/terminal-text.js';
import { formatBytes } from './output.js';

/** Bytes of a transfer: a pull, a download, a bundle part. */
export interface Transfer {
  doneBytes: number;
  /** null when the size is not known ahead. */
  totalBytes: number | null;
  /** Bytes that were already there when this run started (a resumed download): not counted in the rate. */
  fromBytes?: number;
}

export type ProgressUpdate =
  /** A finished line: a plan, a note, a part done. */
  | { kind: 'line'; text: string; green?: boolean }
  /**
   * The step in progress. The same key updates it; another key (or a line) ends it. `keep`: its last text
   * stays as a finished line (the steps of `up`); otherwise it is dropped (a transfer whose end a line
   * reports). `frequent`: sent many times a second (byte counts), so drawn and written sparingly.
   */
  | { kind: 'live'; key: string; label: string; fraction?: number; transfer?: Transfer; keep?: boolean; frequent?: boolean };

export interface LiveStep {
  key: string;
  /** The step's text: the label, with the transfer's bytes when it has one. */
  text: string;
  fraction?: number;
  /** Bytes per second since the step started (transfers, after a second); shown on a terminal. */
  rate?: string;
  keep: boolean;
  transfer?: Transfer;
  startedAt: number;
  startBytes: number;
}

export interface ProgressViewState {
  /** Finished lines, printed once. */
  done: string[];
  current: LiveStep | null;
}

export const initialViewState: ProgressViewState = { done: [], current: null };

export function progressBar(fraction: number, width = 24): string {
  const clamped = Math.max(0, Math.min(1, fraction));
  const full = Math.round(clamped * width);
  return `[${'#'.repeat(full)}${'-'.repeat(width - full)}]`;
}

/** The percent step (0, 10, ... 100) a byte count has reached, or null when the total is unknown. */
export function percentStep(done: number, total: number | null, step = 10): number | null {
  if (total === null || total <= 0) return null;
  return Math.min(100, Math.floor((done / total) * (100 / step)) * step);
}

/** "50% (1.0 GiB of 2.0 GiB)", or the bytes alone when the total is unknown. */
export function transferText(t: Transfer): string {
  if (t.totalBytes === null || t.totalBytes <= 0) return formatBytes(t.doneBytes);
  return `${Math.floor((t.doneBytes / t.totalBytes) * 100)}% (${formatBytes(t.doneBytes)} of ${formatBytes(t.totalBytes)})`;
}

/** The one-line text of a live update (labels quote names from outside: no control characters). */
export function liveText(update: Extract<ProgressUpdate, { kind: 'live' }>): string {
  return terminalLine(update.transfer ? `${update.label} ${transferText(update.transfer)}` : update.label);
}

function fractionOf(update: Extract<ProgressUpdate, { kind: 'live' }>): number | undefined {
  if (update.fraction !== undefined) return update.fraction;
  const t = update.transfer;
  return t && t.totalBytes !== null && t.totalBytes > 0 ? Math.min(1, t.doneBytes / t.totalBytes) : undefined;
}

/** Pure: the next view state for an update at time `now` (ms; only rates use it). */
export function reduceView(state: ProgressViewState, update: ProgressUpdate, now = 0): ProgressViewState {
  const finished = (): string[] => (state.current?.keep ? [...state.done, state.current.text] : state.done);
  if (update.kind === 'line') return { done: [...finished(), terminalLine(update.text)], current: null };
  const same = state.current?.key === update.key ? state.current : null;
  const t = update.transfer;
  const startedAt = same?.startedAt ?? now;
  const startBytes = same?.startBytes ?? t?.fromBytes ?? t?.doneBytes ?? 0;
  const seconds = (now - startedAt) / 1000;
  const fraction = fractionOf(update);
  const current: LiveStep = {
    key: update.key,
    text: liveText(update),
    keep: update.keep ?? false,
    startedAt,
    startBytes,
    ...(fraction !== undefined ? { fraction } : {}),
    ...(t ? { transfer: t } : {}),
    ...(t && seconds >= 1 ? { rate: `${formatBytes(Math.max(0, t.doneBytes - startBytes) / seconds)}/s` } : {}),
  };
  return { done: same ? state.done : finished(), current };
}
