import type { Command } from 'commander';
import { ConfigError, ConflictError, EnvironmentError, UsageError } from '../../core/errors.js';
import { isTenantName } from '../../core/tenant.js';
import type { AuditRecord } from '../../store/audit.js';
import type { ChainCheck } from '../../store/audit-verify.js';
import { contextFor } from '../context.js';
import { formatTable } from '../output.js';
import { parseDuration } from './sessions.js';

// The audit key's module (node:crypto) and the daemon's state (node:child_process) load in the actions that
// use them, not at every command's start (#21).
const auditKeys = () => import('../../store/audit-key.js');

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

async function openFor(command: Command, db?: string, keyFile?: string) {
  const { loaded, output } = await contextFor(command, { store: { path: db } });
  const { openStore, storeFile } = await import('../../store/store.js');
  // The audit log holds no message contents: no encryption key or redaction is needed to read it.
  const store = await openStore({
    file: storeFile(loaded.config, loaded.paths),
    synchronous: loaded.config.store.synchronous,
    busyTimeoutMs: loaded.config.store.busyTimeoutMs,
  });
  return { store, output, loaded, keyFile: keyFile ?? (await auditKeys()).auditKeyFile(loaded.config, loaded.paths) };
}

const iso = (ms: number) => new Date(ms).toISOString();
const exported = (r: AuditRecord) => ({ ...r, at: iso(r.at) });

/** ", keyed (HMAC-SHA-256) with key K from record N; the M before it ..." for verify's line. */
function keyedText(check: ChainCheck): string {
  const keyed = check.keys.filter((k) => k.keyId !== null);
  if (keyed.length === 0) return '; plain SHA-256: no audit key has been used on this log yet (the daemon signs it when it starts)';
  const under = keyed.map((k) => `${k.keyId} from record ${k.fromSeq}`).join(', ');
  const before =
    check.unkeyedRecords > 0
      ? `; the ${check.unkeyedRecords} record(s) before it were written before the key (plain SHA-256) and are bound to the keyed chain by their last hash`
      : '';
  return `; HMAC-SHA-256 under audit key ${under}${before}`;
}

export function register(program: Command): void {
  const audit = program.command('audit').description('The audit log of API requests: who, when, what, how it went; never message contents');
  const dbOption = (c: Command) => c.option('--db <path>', 'database file (default: cs-llm.db in the state directory)');

  const keyFileOption = (c: Command) =>
    c.option('--key-file <file>', 'the audit key file (default: store.auditKeyFile, else audit.key in the state directory)');

  keyFileOption(dbOption(audit.command('verify')))
    .description(
      'Check the chain of the whole log (HMAC-SHA-256 under the audit key); names the first record that was altered, removed or reordered (exit 4)',
    )
    .option('--json', 'print {"ok", "records", "broken", "anchor", "keys", "unkeyedRecords"} as JSON')
    .action(async (opts: { db?: string; keyFile?: string; json?: boolean }, command: Command) => {
      const { store, output, keyFile } = await openFor(command, opts.db, opts.keyFile);
      try {
        const check = await store.audit.verify((await auditKeys()).readAuditKeyring(keyFile));
        if (opts.json) output.json(check);
        if (!check.ok) {
          const { seq, reason, keyMissing } = check.broken!;
          if (keyMissing) {
            throw new EnvironmentError(`audit log in ${store.file} cannot be verified from record ${seq}: ${reason}`, {
              next: `Pass the key file that holds key ${keyMissing} with --key-file (cs-llm audit key-id --key-file F lists a file's keys), or restore ${keyFile} from your backup.`,
            });
          }
          throw new EnvironmentError(`audit log in ${store.file} is broken at record ${seq}: ${reason}`, {
            next: `Records before ${seq} are intact. Keep a copy of the file as evidence, and compare it with your last export (cs-llm audit export).`,
          });
        }
        if (!opts.json) {
          const from = check.anchor
            ? `, from record ${check.anchor.seq + 1} (${check.anchor.prunedRecords} older record(s) pruned, last on ${iso(check.anchor.prunedAt)}; the chain starts from the last pruned record's hash)`
            : '';
          output.out(`audit log ok: ${check.records} record(s), hash chain intact${from}${keyedText(check)}`);
        }
      } finally {
        await store.close();
      }
    });

  keyFileOption(dbOption(audit.command('prune')))
    .description('Delete the records older than a time (the daemon does it by store.auditRetentionDays); the rest still verifies')
    .requiredOption('--older-than <time|duration>', 'e.g. 365d, 2026-01-31')
    .option('--json', 'print {"pruned", "anchor"} as JSON')
    .action(async (opts: { db?: string; keyFile?: string; olderThan: string; json?: boolean }, command: Command) => {
      const before = parseSince(opts.olderThan, Date.now(), '--older-than');
      const { loaded, output } = await contextFor(command, { store: { path: opts.db } });
      const { auditKeyFile, readAuditKeyring } = await auditKeys();
      const keyFile = opts.keyFile ?? auditKeyFile(loaded.config, loaded.paths);
      const open = async () => (await openFor(command, opts.db, opts.keyFile)).store;
      // The new anchor is signed with the audit key (created on first use, as the daemon would).
      const { withStoreAdmin } = await import('../store-admin.js');
      const { pruned, scrubbed } = await withStoreAdmin(
        loaded,
        { open, auditKeyFile: keyFile, ...(opts.keyFile ? { explicitAuditKeyFile: opts.keyFile } : {}) },
        (admin) => admin.pruneAudit({ before }),
      );
      // What is left, read as a reader: never a lock a running daemon would wait for.
      const store = await open();
      try {
        const check = await store.audit.verify(readAuditKeyring(keyFile));
        if (opts.json) output.json({ pruned, scrubbed, anchor: check.anchor ?? null });
        else
          output.out(
            `pruned ${pruned} audit record(s) older than ${iso(before)}; ${check.records} kept${scrubbed ? '' : ' (the WAL file could not be truncated yet: another process holds the database; the daemon retries)'}`,
          );
      } finally {
        await store.close();
      }
    });

  keyFileOption(dbOption(audit.command('new-key')))
    .description(
      'Put a new audit key in force (earlier keys stay in the file) and chain the next records under it: after a key was lost or exposed',
    )
    .option('--json', 'print {"keyId", "keyFile", "fromSeq", "previousKeyId", "previousKeyHeld"} as JSON')
    .action(async (opts: { db?: string; keyFile?: string; json?: boolean }, command: Command) => {
      const { store, output, loaded, keyFile } = await openFor(command, opts.db, opts.keyFile);
      try {
        // A running daemon holds the old key in memory and would go on chaining with it.
        const { daemonProcess, readDaemonState } = await import('../../daemon/lifecycle.js');
        const state = readDaemonState(loaded.paths);
        if (state && daemonProcess(state) === 'running') {
          throw new ConflictError(`the daemon (pid ${state.pid}) is running and chains the audit log with the current key`, {
            next: 'Stop it first (cs-llm daemon stop), run cs-llm audit new-key, and start it again.',
          });
        }
        const ring = (await auditKeys()).addAuditKey(keyFile);
        const { fromSeq, previousKeyId } = await store.audit.startKey(ring);
        const previousKeyHeld = previousKeyId === null || ring.byId(previousKeyId) !== undefined;
        if (opts.json) {
          output.json({ keyId: ring.current.id, keyFile, fromSeq, previousKeyId, previousKeyHeld });
          return;
        }
        output.out(`audit key ${ring.current.id} is in force (${keyFile}); records from ${fromSeq} on are chained under it`);
        if (!previousKeyHeld)
          output.out(
            `records before ${fromSeq} are under key ${previousKeyId}, which ${keyFile} does not hold: audit verify cannot check them until that key's line is added back to the file`,
          );
        output.out(`back up ${keyFile} now, apart from the database backups`);
      } finally {
        await store.close();
      }
    });

  audit
    .command('key-id')
    .description('Print the ids of the keys in an audit key file, the one in force first (to find the backup that holds a key)')
    .option('--key-file <file>', 'the file to read (default: store.auditKeyFile, else audit.key in the state directory)')
    .action(async (opts: { keyFile?: string }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const { auditKeyFile, readAuditKeyring } = await auditKeys();
      const file = opts.keyFile ?? auditKeyFile(loaded.config, loaded.paths);
      const ring = readAuditKeyring(file);
      if (!ring)
        throw new ConfigError(`no audit key file at ${file}`, {
          next: 'The daemon creates it on first start; pass --key-file to read another file.',
        });
      for (const [i, k] of ring.keys.entries()) output.out(i === 0 ? `${k.id} (in force)` : k.id);
    });

  dbOption(audit.command('export'))
    .description('Records since a time, oldest first')
    .requiredOption('--since <time|duration>', 'e.g. 30d, 12h, 2026-01-31, 2026-01-31T12:00:00Z')
    .option('--tenant <name>', 'only the requests of this tenant (records from before tenants name none and are left out)')
    .option('--json', 'one JSON object per line (NDJSON)')
    .action(async (opts: { db?: string; since: string; tenant?: string; json?: boolean }, command: Command) => {
      const since = parseSince(opts.since);
      if (opts.tenant !== undefined && !isTenantName(opts.tenant))
        throw new UsageError(`--tenant "${opts.tenant}" must be 1-64 letters, digits, ".", "_" or "-"`);
      const tenant = opts.tenant ?? null;
      const { store, output } = await openFor(command, opts.db);
      try {
        if (opts.json) {
          for await (const r of store.audit.since(since, tenant)) output.out(JSON.stringify(exported(r)));
          return;
        }
        const rows: AuditRecord[] = [];
        for await (const r of store.audit.since(since, tenant)) rows.push(r);
        if (output.isTTY) {
          if (rows.length === 0) output.out(`no audit records since ${iso(since)}`);
          else
            output.out(
              formatTable(
                ['SEQ', 'AT', 'KEY', 'TENANT', 'ROUTE', 'SESSION', 'UPSTREAM', 'STATUS', 'TOKENS', 'MS'],
                rows.map((r) => [
                  String(r.seq),
                  iso(r.at),
                  r.keyId ?? '-',
                  r.tenant ?? '-',
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
              `seq=${r.seq} at=${iso(r.at)} key=${r.keyId ?? '-'} tenant=${r.tenant ?? '-'} method=${r.method} route=${r.route} session=${r.sessionId ?? '-'} upstream=${r.upstream ?? '-'} status=${r.status} outcome=${r.outcome} prompt_tokens=${r.promptTokens ?? '-'} completion_tokens=${r.completionTokens ?? '-'} latency_ms=${r.latencyMs}`,
            );
          }
        }
      } finally {
        await store.close();
      }
    });
}
