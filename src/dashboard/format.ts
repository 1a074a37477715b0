/* Text pieces of the dashboard, pure, shared by the Ink view and the plain (not a TTY) lines. */

import type { DashboardState } from './state.js';

const SPARKS = '▁▂▃▄▅▆▇█';

/** The last `width` values as a sparkline scaled to their maximum; zeros are the lowest bar. */
export function sparkline(values: number[], width: number): string {
  const shown = values.slice(-width);
  const max = Math.max(0, ...shown);
  return shown
    .map((v) => {
      if (max <= 0 || v <= 0) return SPARKS[0];
      return SPARKS[Math.min(SPARKS.length - 1, Math.max(1, Math.round((v / max) * (SPARKS.length - 1))))];
    })
    .join('');
}

/** A bar of `width` cells, filled to fraction (0..1). */
export function bar(fraction: number, width: number): string {
  const f = Math.min(1, Math.max(0, fraction));
  const filled = Math.round(f * width);
  return `${'█'.repeat(filled)}${'░'.repeat(width - filled)}`;
}

export function formatSeconds(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '-';
  const ms = seconds * 1000;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${seconds.toFixed(2)} s`;
}

export function formatRate(value: number | null, unit = '/s'): string {
  if (value === null || !Number.isFinite(value)) return '-';
  return `${value >= 100 ? Math.round(value) : value.toFixed(1)}${unit}`;
}

export function formatPercent(fraction: number | null): string {
  if (fraction === null || !Number.isFinite(fraction)) return '-';
  const pct = fraction * 100;
  return `${pct === 0 || pct >= 10 ? Math.round(pct) : pct.toFixed(1)}%`;
}

export function formatInterval(ms: number): string {
  return ms < 1000 || ms % 1000 !== 0 ? `${ms} ms` : `${ms / 1000}s`;
}

export function formatGiB(bytes: number | null): string {
  if (bytes === null) return '-';
  return (bytes / 1024 ** 3).toFixed(1);
}

/** Money: two decimals from 1 up, four significant digits below (0.01234). */
export function formatMoney(value: number | null, currency: string): string {
  if (value === null || !Number.isFinite(value)) return '-';
  return `${Math.abs(value) >= 1 || value === 0 ? value.toFixed(2) : value.toPrecision(4)} ${currency}`;
}

/** A large count short: 950, 12.3k, 4.5M. */
export function formatShort(n: number | null): string {
  if (n === null || !Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(1)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

export function formatCount(n: number | null): string {
  return n === null ? '-' : String(Math.round(n));
}

function plainNumber(n: number | null, digits = 3): string {
  if (n === null || !Number.isFinite(n)) return '-';
  return Number.isInteger(n) ? String(n) : n.toFixed(digits);
}

/**
 * One parseable line of key=value pairs for a non-terminal (logs, pipes): the same figures as the panel,
 * durations in ms, ratios 0..1, '-' where a figure is unknown, GPUs as gpuN_* keys.
 */
export function plainLine(state: DashboardState, at: number): string {
  const pairs: Array<[string, string]> = [
    ['time', new Date(at).toISOString()],
    ['daemon', state.reachable === null ? 'unknown' : state.reachable ? 'up' : 'unreachable'],
    ['engine', state.engineUp === null ? 'unknown' : state.engineUp ? 'up' : 'down'],
    ['model', state.model === null ? '-' : /[\s"=]/.test(state.model) ? JSON.stringify(state.model) : state.model],
    ['uptime_s', plainNumber(state.uptimeSeconds === null ? null : Math.floor(state.uptimeSeconds))],
    ['rps', plainNumber(state.requestsPerSecond)],
    ['p50_ms', plainNumber(state.latency.p50 === null ? null : state.latency.p50 * 1000, 1)],
    ['p95_ms', plainNumber(state.latency.p95 === null ? null : state.latency.p95 * 1000, 1)],
    ['p99_ms', plainNumber(state.latency.p99 === null ? null : state.latency.p99 * 1000, 1)],
    ['ttft_p50_ms', plainNumber(state.ttft.p50 === null ? null : state.ttft.p50 * 1000, 1)],
    ['ttft_p95_ms', plainNumber(state.ttft.p95 === null ? null : state.ttft.p95 * 1000, 1)],
    ['tokens_per_s', plainNumber(state.tokensPerSecond, 1)],
    ['in_flight', plainNumber(state.inFlight)],
    ['queued', plainNumber(state.queued)],
    ['error_rate', plainNumber(state.errorRate, 4)],
    ['rate_limited_rate', plainNumber(state.rateLimitedRate, 4)],
    ['sessions_active', plainNumber(state.sessionsActive)],
    ['kv_cache', plainNumber(state.kvCacheUsage, 4)],
  ];
  for (const c of state.cost) {
    pairs.push(
      [`cost_per_hour_${c.currency}`, plainNumber(c.perHour, 4)],
      [`cost_per_1k_sessions_${c.currency}`, plainNumber(c.per1kSessions, 4)],
    );
  }
  for (const t of state.tenants) {
    pairs.push(
      [`tenant_${t.tenant}_rps`, plainNumber(t.requestsPerSecond)],
      [`tenant_${t.tenant}_tokens_per_s`, plainNumber(t.tokensPerSecond, 1)],
      [`tenant_${t.tenant}_quota_429s`, plainNumber(t.refused)],
    );
    if (t.tokensPerDay !== null) pairs.push([`tenant_${t.tenant}_tokens_today`, plainNumber(t.tokensToday)]);
  }
  for (const gpu of state.gpus) {
    pairs.push(
      [`gpu${gpu.index}_vram_used_bytes`, plainNumber(gpu.memoryUsedBytes)],
      [`gpu${gpu.index}_vram_total_bytes`, plainNumber(gpu.memoryTotalBytes)],
      [`gpu${gpu.index}_util`, plainNumber(gpu.utilization, 2)],
      [`gpu${gpu.index}_temp_c`, plainNumber(gpu.temperatureC, 0)],
    );
  }
  if (state.reachable === false && state.problem) pairs.push(['problem', JSON.stringify(state.problem)]);
  return pairs.map(([k, v]) => `${k}=${v}`).join(' ');
}
