import { InvalidArgumentError, type Command } from 'commander';
import { NotFoundError, UsageError } from '../../core/errors.js';
import type { ChatMessage } from '../../store/sessions.js';
import { openStore, storeFile } from '../../store/store.js';
import { contextFor } from '../context.js';
import { formatTable } from '../output.js';

/** An integer flag; commander reports a bad value as a usage error naming the flag. */
function integer(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a whole number, got "${value}".`);
  return n;
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d", "12h", "90m", "45s", "2w" -> milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!match) throw new UsageError(`"${text}" is not a duration`, { next: 'Write a number and a unit: 45s, 90m, 12h, 30d or 2w.' });
  return Number(match[1]) * UNITS[match[2]!]!;
}

function openFor(command: Command, db?: string) {
  const { loaded, output } = contextFor(command, { store: { path: db } });
  const store = openStore({ file: storeFile(loaded.config, loaded.paths), synchronous: loaded.config.store.synchronous, busyTimeoutMs: loaded.config.store.busyTimeoutMs });
  return { store, output };
}

function contentText(m: ChatMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (Array.isArray(m.content)) return m.content.map((p) => ((p as { text?: unknown }).text as string | undefined) ?? `[${(p as { type?: string }).type}]`).join(' ');
  return '';
}

const iso = (ms: number) => new Date(ms).toISOString();

export function register(program: Command): void {
  const sessions = program.command('sessions').description('Chat sessions stored by the daemon (reads the database directly)');
  const dbOption = (c: Command) => c.option('--db <path>', 'session database file (default: cs-llm.db in the state directory)');

  dbOption(sessions.command('list'))
    .description('Live sessions, the latest to expire (most recently used) first')
    .option('--limit <n>', 'at most this many', integer, 50)
    .option('--json', 'print {"sessions": [...]} as JSON')
    .action((opts: { db?: string; limit: number; json?: boolean }, command: Command) => {
      const { store, output } = openFor(command, opts.db);
      try {
        const page = store.sessions.list({ now: Date.now(), limit: Math.max(1, opts.limit) });
        const rows = page.sessions.map((s) => ({ ...s, createdAt: iso(s.createdAt), updatedAt: iso(s.updatedAt), expiresAt: iso(s.expiresAt) }));
        if (opts.json) output.json({ sessions: rows, more: page.nextCursor !== null });
        else if (output.isTTY) {
          if (rows.length === 0) output.out('no live sessions');
          else output.out(formatTable(['ID', 'PROFILE', 'TURNS', 'UPDATED', 'EXPIRES'], rows.map((s) => [s.id, s.profile, String(s.turns), s.updatedAt, s.expiresAt]), output.columns));
        } else {
          for (const s of rows) output.out(`id=${s.id} profile=${s.profile} turns=${s.turns} updated=${s.updatedAt} expires=${s.expiresAt}`);
        }
      } finally {
        store.close();
      }
    });

  dbOption(sessions.command('show'))
    .description("A session's messages")
    .argument('<id>')
    .option('--json', 'print {"id", "messages", "createdAt", "updatedAt", "expiresAt"} as JSON')
    .action((id: string, opts: { db?: string; json?: boolean }, command: Command) => {
      const { store, output } = openFor(command, opts.db);
      try {
        const session = store.sessions.get(id, Date.now());
        if (!session) throw new NotFoundError(`no live session "${id}"`, { next: 'See cs-llm sessions list (expired sessions are not shown).' });
        if (opts.json) {
          output.json({ ...session, createdAt: iso(session.createdAt), updatedAt: iso(session.updatedAt), expiresAt: iso(session.expiresAt) });
          return;
        }
        for (const m of session.messages) {
          const calls = (m.tool_calls ?? []).map((c) => {
            const fn = (c as { function?: { name?: string; arguments?: string } }).function;
            return ` [calls ${fn?.name ?? '?'}(${fn?.arguments ?? ''})]`;
          });
          output.out(`${m.role}: ${contentText(m)}${calls.join('')}`);
        }
      } finally {
        store.close();
      }
    });

  dbOption(sessions.command('delete'))
    .description('Delete a session and its messages')
    .argument('<id>')
    .action((id: string, opts: { db?: string }, command: Command) => {
      const { store, output } = openFor(command, opts.db);
      try {
        if (!store.sessions.delete(id)) throw new NotFoundError(`no session "${id}"`, { next: 'See cs-llm sessions list.' });
        output.out(`deleted session ${id}`);
      } finally {
        store.close();
      }
    });

  dbOption(sessions.command('prune'))
    .description('Delete expired sessions, and with --older-than also sessions unused for that long')
    .option('--older-than <duration>', 'e.g. 30d, 12h: also delete sessions not updated for this long')
    .option('--json', 'print {"expired", "old"} as JSON')
    .action((opts: { db?: string; olderThan?: string; json?: boolean }, command: Command) => {
      const age = opts.olderThan === undefined ? null : parseDuration(opts.olderThan);
      const { store, output } = openFor(command, opts.db);
      try {
        const now = Date.now();
        let expired = 0;
        for (let n = -1; n !== 0; ) {
          n = store.sessions.sweepExpired(now, 500);
          expired += n;
        }
        const old = age === null ? 0 : store.sessions.pruneOlderThan(now - age);
        if (opts.json) output.json({ expired, old });
        else output.out(`deleted ${expired} expired session(s)${age === null ? '' : ` and ${old} not updated for ${opts.olderThan}`}`);
      } finally {
        store.close();
      }
    });
}
