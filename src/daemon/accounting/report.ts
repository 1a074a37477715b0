/*
 * `cs-llm usage`: the stored aggregates summed by one dimension, per currency. Pure.
 */

import type { UsageRow } from '../../store/usage.js';

export const USAGE_DIMENSIONS = ['upstream', 'tenant', 'key', 'model', 'day'] as const;
export type UsageDimension = (typeof USAGE_DIMENSIONS)[number];

export interface UsageLine {
  /** The dimension's value ('(no key)' for requests without a key); 'total' in the totals. */
  group: string;
  /** '' for upstreams without a price: tokens only. */
  currency: string;
  requests: number;
  sessions: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  cost: number;
  /** cost / sessions x 1000; null without sessions or without a price. */
  costPer1kSessions: number | null;
}

export interface UsageReport {
  by: UsageDimension;
  /** The first day covered (YYYY-MM-DD, UTC) and the last. */
  fromDay: string;
  toDay: string;
  /** Most expensive first. */
  lines: UsageLine[];
  /** One per currency ('' too when some upstream has no price). */
  totals: UsageLine[];
}

function groupOf(row: UsageRow, by: UsageDimension): string {
  switch (by) {
    case 'key':
      return row.keyId === '' ? '(no key)' : row.keyId;
    case 'day':
      return row.day;
    default:
      return row[by];
  }
}

function sum(lines: Map<string, UsageLine>, group: string, row: UsageRow): void {
  const id = `${group}\u0000${row.currency}`;
  let line = lines.get(id);
  if (!line) {
    line = {
      group,
      currency: row.currency,
      requests: 0,
      sessions: 0,
      promptTokens: 0,
      cachedTokens: 0,
      completionTokens: 0,
      cost: 0,
      costPer1kSessions: null,
    };
    lines.set(id, line);
  }
  line.requests += row.requests;
  line.sessions += row.sessions;
  line.promptTokens += row.promptTokens;
  line.cachedTokens += row.cachedTokens;
  line.completionTokens += row.completionTokens;
  line.cost += row.cost;
}

function finish(lines: Map<string, UsageLine>): UsageLine[] {
  const out = [...lines.values()];
  for (const l of out) {
    // Sums of 1e-9 units: rounded back to them, so that 0.1 + 0.2 prints as 0.3.
    l.cost = Math.round(l.cost * 1e9) / 1e9;
    l.costPer1kSessions = l.sessions > 0 && l.currency !== '' ? (l.cost / l.sessions) * 1000 : null;
  }
  return out;
}

export function summarizeUsage(rows: readonly UsageRow[], by: UsageDimension, range: { fromDay: string; toDay: string }): UsageReport {
  const groups = new Map<string, UsageLine>();
  const totals = new Map<string, UsageLine>();
  for (const row of rows) {
    sum(groups, groupOf(row, by), row);
    sum(totals, 'total', row);
  }
  const lines = finish(groups).sort((a, b) =>
    by === 'day'
      ? a.group.localeCompare(b.group) || a.currency.localeCompare(b.currency)
      : b.cost - a.cost || a.group.localeCompare(b.group),
  );
  return { by, ...range, lines, totals: finish(totals).sort((a, b) => b.cost - a.cost) };
}
