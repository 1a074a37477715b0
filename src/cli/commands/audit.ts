import type { Command } from 'commander';
import { EnvironmentError, UsageError } from '../../core/errors.js';
import { auditSince, pruneAuditBefore, verifyAuditChain, type AuditRecord } from '../../store/audit.js';
import { scrubBlocking } from '../../store/retention.js';
import { openStore, storeFile } from '../../store/store.js';
import { contextFor } from '../context.js';
import { formatTable } from '../output.js';
import { parseDuration } from './sessions.js';

/** "30d" (that long ago) or a date/time Date.parse understands ("2026-01-31", "2026-01-31T12:00:00Z"). */
export function parseSince(text: string, now = Date.now(), option = '--since'): number {
  if (/^\d+\s*[smhdw]$/.test(text.trim())) return now - parseDuration(text);
  const at = Date.parse(text);
  if (Number.isNaN(at))
    throw new UsageError(`${option} "${text}" is neither a duration nor a time`, {
      next: 'Write a duration (30d, 12h) or a time (2026-01-31 or 2026-01-31T12:00:00Z).',
    });
  return at;
}

function openFor(command: Command, db?: string) {
  const { loaded, output } = contextFor(command, { store: { path: db } });
  // The audit log holds no message contents: no encryption key or redaction is needed to read it.
  const store = openStore({
    file: storeFile(loaded.config, loaded.paths),
    synchronous: loaded.config.store.synchronous,
    busyTimeoutMs: loaded.config.store.busyTimeoutMs,
  });
  return { store, output };
}

const iso = (ms: number) => new Date(ms).toISOString();
const exported = (r: AuditRecord) => ({ ...r, at: iso(r.at) });

export function register(program: Command): void {
  const audit = program.command('audit').description('The audit log of API requests: who, when, what, how it went; never message contents');
  const dbOption = (c: Command) => c.option('--db <path>', 'database file (default: cs-llm.db in the state directory)');

  dbOption(audit.command('verify'))
    .description('Check the hash chain of the whole log; names the first record that was altered, removed or reordered (exit 4)')
    .option('--json', 'print {"ok", "records", "broken"} as JSON')
    .action((opts: { db?: string; json?: boolean }, command: Command) => {
      const { store, output } = openFor(command, opts.db);
      try {
        const check = verifyAuditChain(store.db);
        if (opts.json) output.json(check);
        if (!check.ok) {
          throw new EnvironmentError(`audit log in ${store.file} is broken at record ${check.broken!.seq}: ${check.broken!.reason}`, {
            next: `Records before ${check.broken!.seq} are intact. Keep a copy of the file as evidence, and compare it with your last export (cs-llm audit export).`,
          });
        }
        if (!opts.json) {
          const from = check.anchor
            ? `, from record ${check.anchor.seq + 1} (${check.anchor.prunedRecords} older record(s) pruned, last on ${iso(check.anchor.prunedAt)}; the chain starts from the last pruned record's hash)`
            : '';
          output.out(`audit log ok: ${check.records} record(s), hash chain intact${from}`);
        }
      } finally {
        store.close();
      }
    });

  dbOption(audit.command('prune'))
    .description('Delete the records older than a time (the daemon does it by store.auditRetentionDays); the rest still verifies')
    .requiredOption('--older-than <time|duration>', 'e.g. 365d, 2026-01-31')
    .option('--json', 'print {"pruned", "anchor"} as JSON')
    .action((opts: { db?: string; olderThan: string; json?: boolean }, command: Command) => {
      const before = parseSince(opts.olderThan, Date.now(), '--older-than');
      const { store, output } = openFor(command, opts.db);
      try {
        let pruned = 0;
        for (let n = -1; n !== 0; pruned += n) n = pruneAuditBefore(store.db, before, Date.now());
        // The deleted rows name sessions and keys: out of the WAL file too, as for sessions.
        const scrubbed = pruned === 0 || scrubBlocking(store.db);
        const check = verifyAuditChain(store.db);
        if (opts.json) output.json({ pruned, scrubbed, anchor: check.anchor ?? null });
        else
          output.out(
            `pruned ${pruned} audit record(s) older than ${iso(before)}; ${check.records} kept${scrubbed ? '' : ' (the WAL file could not be truncated yet: another process holds the database; the daemon retries)'}`,
          );
      } finally {
        store.close();
      }
    });

  dbOption(audit.command('export'))
    .description('Records since a time, oldest first')
    .requiredOption('--since <time|duration>', 'e.g. 30d, 12h, 2026-01-31, 2026-01-31T12:00:00Z')
    .option('--json', 'one JSON object per line (NDJSON)')
    .action((opts: { db?: string; since: string; json?: boolean }, command: Command) => {
      const since = parseSince(opts.since);
      const { store, output } = openFor(command, opts.db);
      try {
        if (opts.json) {
          for (const r of auditSince(store.db, since)) output.out(JSON.stringify(exported(r)));
          return;
        }
        const rows = [...auditSince(store.db, since)];
        if (output.isTTY) {
          if (rows.length === 0) output.out(`no audit records since ${iso(since)}`);
          else
            output.out(
              formatTable(
                ['SEQ', 'AT', 'KEY', 'ROUTE', 'SESSION', 'UPSTREAM', 'STATUS', 'TOKENS', 'MS'],
                rows.map((r) => [
                  String(r.seq),
                  iso(r.at),
                  r.keyId ?? '-',
                  `${r.method} ${r.route}`,
                  r.sessionId ?? '-',
                  r.upstream ?? '-',
                  String(r.status),
                  `${r.promptTokens ?? '-'}/${r.completionTokens ?? '-'}`,
                  r.latencyMs.toFixed(1),
                ]),
                output.columns,
              ),
            );
        } else {
          for (const r of rows) {
            output.out(
              `seq=${r.seq} at=${iso(r.at)} key=${r.keyId ?? '-'} method=${r.method} route=${r.route} session=${r.sessionId ?? '-'} upstream=${r.upstream ?? '-'} status=${r.status} outcome=${r.outcome} prompt_tokens=${r.promptTokens ?? '-'} completion_tokens=${r.completionTokens ?? '-'} latency_ms=${r.latencyMs}`,
            );
          }
        }
      } finally {
        store.close();
      }
    });
}
