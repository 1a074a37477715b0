import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import { summarizeUsage, USAGE_DIMENSIONS, type UsageDimension, type UsageLine, type UsageReport } from '../../daemon/accounting/report.js';
import { contextFor } from '../context.js';
import { formatTable, type Output } from '../output.js';
import { parseDuration } from './sessions.js';

/** "7d" (back from now) or a date "2026-03-01" -> the first UTC day to report. */
export function sinceDay(text: string, now: number): string {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text) && !Number.isNaN(Date.parse(`${text}T00:00:00Z`))) return text;
  let ms: number;
  try {
    ms = parseDuration(text);
  } catch {
    throw new UsageError(`--since "${text}" is neither a duration nor a date`, {
      next: 'Write 7d, 12h, 2w, or a UTC date such as 2026-03-01.',
    });
  }
  return new Date(now - ms).toISOString().slice(0, 10);
}

function money(line: Pick<UsageLine, 'currency'>, value: number | null): string {
  if (line.currency === '' || value === null) return '-';
  return `${value.toFixed(value !== 0 && Math.abs(value) < 1 ? 6 : 2)} ${line.currency}`;
}

const count = (n: number) => n.toLocaleString('en-US');

const CSV_FIELDS = ['requests', 'sessions', 'promptTokens', 'cachedTokens', 'completionTokens', 'cost', 'costPer1kSessions'] as const;

function csvCell(value: string | number | null): string {
  const text = value === null ? '' : String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function render(output: Output, report: UsageReport, format: 'table' | 'json' | 'csv'): void {
  if (format === 'json') return output.json(report);
  if (format === 'csv') {
    output.out([report.by, 'currency', ...CSV_FIELDS].join(','));
    for (const l of [...report.lines, ...report.totals])
      output.out([l.group, l.currency, ...CSV_FIELDS.map((f) => l[f])].map(csvCell).join(','));
    return;
  }
  const period = `${report.fromDay} to ${report.toDay} (UTC days)`;
  if (report.lines.length === 0) {
    output.out(`no usage recorded from ${period}`);
    return;
  }
  if (output.isTTY) {
    output.out(
      formatTable(
        [report.by.toUpperCase(), 'REQUESTS', 'SESSIONS', 'PROMPT TOKENS', 'COMPLETION TOKENS', 'COST', 'PER 1K SESSIONS'],
        [...report.lines, ...report.totals].map((l) => [
          l.group,
          count(l.requests),
          count(l.sessions),
          count(l.promptTokens),
          count(l.completionTokens),
          money(l, l.cost),
          money(l, l.costPer1kSessions),
        ]),
        output.columns,
      ),
    );
    output.out(period);
    return;
  }
  for (const l of [...report.lines, ...report.totals]) {
    output.out(
      `${report.by}=${l.group} currency=${l.currency || '-'} requests=${l.requests} sessions=${l.sessions} prompt_tokens=${l.promptTokens} ` +
        `cached_tokens=${l.cachedTokens} completion_tokens=${l.completionTokens} cost=${l.cost} per_1k_sessions=${l.costPer1kSessions ?? '-'}`,
    );
  }
}

export function register(program: Command): void {
  program
    .command('usage')
    .description("Tokens and cost per upstream, tenant, key, model or day, from the daemon's aggregates (reads the database)")
    .option('--since <when>', 'from this long ago (7d, 12h, 2w) or this UTC date (2026-03-01)', '7d')
    .option('--by <dimension>', `group by ${USAGE_DIMENSIONS.join(', ')}`, 'upstream')
    .option('--json', 'print the report as JSON')
    .option('--csv', 'print the report as CSV (one line per group and currency, then the totals)')
    .option('--db <path>', 'session database file (default: cs-llm.db in the state directory)')
    .action(async (opts: { since: string; by: string; json?: boolean; csv?: boolean; db?: string }, command: Command) => {
      if (!(USAGE_DIMENSIONS as readonly string[]).includes(opts.by)) {
        throw new UsageError(`--by "${opts.by}" is not a dimension`, { next: `Use one of: ${USAGE_DIMENSIONS.join(', ')}.` });
      }
      if (opts.json && opts.csv) throw new UsageError('--json and --csv exclude each other', { next: 'Pick one of them.' });
      const now = Date.now();
      const fromDay = sinceDay(opts.since, now);
      const { loaded, output } = await contextFor(command, { store: { path: opts.db } });
      const { openStore, storeFile } = await import('../../store/store.js');
      const store = await openStore({ file: storeFile(loaded.config, loaded.paths), busyTimeoutMs: loaded.config.store.busyTimeoutMs });
      try {
        const rows = await store.usage.query({ fromDay });
        const report = summarizeUsage(rows, opts.by as UsageDimension, { fromDay, toDay: new Date(now).toISOString().slice(0, 10) });
        render(output, report, opts.json ? 'json' : opts.csv ? 'csv' : 'table');
      } finally {
        await store.close();
      }
    });
}
