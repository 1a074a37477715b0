/*
 * `cs-llm bench`'s chart: end-to-end latency (p95 ●, p50 ·) against the offered rate, with the SLO as a dotted
 * line, in plain characters for any terminal. The rates grow by a factor per step, so the x axis is
 * logarithmic when they span more than a factor of 4. Pure.
 */

import type { StepRow } from '../capacity/ramp.js';

export interface ChartOptions {
  sloSeconds: number;
  /** Columns available (the whole line, labels included). */
  width: number;
  height?: number;
}

function label(seconds: number): string {
  return seconds >= 10 ? seconds.toFixed(0) : seconds >= 1 ? seconds.toFixed(1) : seconds.toFixed(2);
}

export function rateText(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate >= 10 ? rate.toFixed(1).replace(/\.0$/, '') : String(Number(rate.toPrecision(2)));
}

export function latencyChart(rows: readonly StepRow[], o: ChartOptions): string[] {
  const points = rows.filter((r) => r.e2e !== null);
  if (points.length === 0) return [];
  const height = o.height ?? 10;
  const gutter = 6;
  // Room for the tick labels, the axis and " SLO p95" after the line.
  const plotWidth = Math.max(20, Math.min(72, o.width - gutter - 9));
  const rates = points.map((r) => r.rate);
  const lo = Math.min(...rates);
  const hi = Math.max(...rates);
  const logScale = hi / lo > 4;
  const x = (rate: number): number => {
    if (hi === lo) return Math.floor(plotWidth / 2);
    const f = logScale ? Math.log(rate / lo) / Math.log(hi / lo) : (rate - lo) / (hi - lo);
    return Math.round(f * (plotWidth - 1));
  };
  const top = Math.max(o.sloSeconds * 1.5, Math.min(o.sloSeconds * 4, Math.max(...points.map((r) => r.e2e!.p95))));
  const y = (seconds: number): number => Math.min(height - 1, Math.round((seconds / top) * (height - 1)));
  const grid: string[][] = Array.from({ length: height }, () => Array.from({ length: plotWidth }, () => ' '));
  const sloRow = y(o.sloSeconds);
  for (let c = 0; c < plotWidth; c++) grid[sloRow]![c] = '┄';
  for (const r of points) {
    const col = x(r.rate);
    const p50 = y(r.e2e!.p50);
    if (grid[p50]![col] !== '●') grid[p50]![col] = '·';
    // Above the chart's top: drawn at the top as an arrow.
    grid[y(r.e2e!.p95)]![col] = r.e2e!.p95 > top ? '▲' : '●';
  }
  const lines: string[] = ['end-to-end latency, seconds'];
  for (let row = height - 1; row >= 0; row--) {
    // The SLO's row is labelled with the SLO itself (the rows are only as fine as the chart is tall).
    const value = row === sloRow ? o.sloSeconds : (row / (height - 1)) * top;
    const tick = row === height - 1 || row === sloRow || row === 0 ? label(value).padStart(gutter - 1) : ''.padStart(gutter - 1);
    const axis = row === 0 ? '┼' : row === sloRow || row === height - 1 ? '┤' : '│';
    lines.push(`${tick}${axis}${grid[row]!.join('')}${row === sloRow ? ' SLO p95' : ''}`.trimEnd());
  }
  // Rate labels under their columns, left to right, where they do not overlap.
  const axisLine = Array.from({ length: plotWidth }, () => ' ');
  let free = 0;
  for (const rate of [...new Set(rates)].sort((a, b) => a - b)) {
    const text = rateText(rate);
    const at = Math.min(plotWidth - text.length, Math.max(free, x(rate) - Math.floor(text.length / 2)));
    if (at < free) continue;
    for (let i = 0; i < text.length; i++) axisLine[at + i] = text[i]!;
    free = at + text.length + 1;
  }
  lines.push(`${''.padStart(gutter)}${axisLine.join('').trimEnd()}`);
  lines.push(`${''.padStart(gutter)}offered turns/s${logScale ? ' (log scale)' : ''}    ● p95  · p50  ▲ p95 above the chart`);
  return lines;
}
