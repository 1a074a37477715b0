import type { Command } from 'commander';
import { EnvironmentError, NotFoundError, UsageError } from '../../core/errors.js';
import { openConfiguredStore } from '../../store/protection.js';
import type { ChatMessage } from '../../core/messages.js';
import { contextFor, intFlag } from '../context.js';
import { withStoreAdmin } from '../store-admin.js';
import { formatTable } from '../output.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d", "12h", "90m", "45s", "2w" -> milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!match) throw new UsageError(`"${text}" is not a duration`, { next: 'Write a number and a unit: 45s, 90m, 12h, 30d or 2w.' });
  return Number(match[1]) * UNITS[match[2]!]!;
}

/** The store with the config's redaction, encryption key and retention: the same protection as the daemon's. */
async function openFor(command: Command, db?: string) {
  const { loaded, output } = contextFor(command, { store: { path: db } });
  const store = await openConfiguredStore(loaded.config, loaded.paths);
  return { store, output };
}

/**
 * After a deletion the deleted text must leave the database and WAL files too (secure_delete zeroed it in the
 * WAL's pages; a TRUNCATE checkpoint copies them over the old ones and empties the WAL). Another process
 * reading the database can hold that off: the operation retried for 10 s.
 */
function scrubbedOrFail(scrubbed: boolean, file: string, what: string): void {
  if (scrubbed) return;
  throw new EnvironmentError(`${what}, but the deleted text may still be in ${file}-wal: another process kept the database busy for 10 s`, {
    next: `Run cs-llm store scrub when the database is idle (a running daemon also keeps scrubbing after its own deletions).`,
  });
}

function contentText(m: ChatMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (Array.isArray(m.content))
    return m.content.map((p) => ((p as { text?: unknown }).text as string | undefined) ?? `[${(p as { type?: string }).type}]`).join(' ');
  return '';
}

const iso = (ms: number) => new Date(ms).toISOString();

export function register(program: Command): void {
  const sessions = program.command('sessions').description('Chat sessions stored by the daemon (reads the database directly)');
  const dbOption = (c: Command) => c.option('--db <path>', 'session database file (default: cs-llm.db in the state directory)');

  dbOption(sessions.command('list'))
    .description('Live sessions, the latest to expire (most recently used) first')
    .option('--limit <n>', 'at most this many', intFlag('--limit', { min: 0 }), 50)
    .option('--json', 'print {"sessions": [...]} as JSON')
    .action(async (opts: { db?: string; limit: number; json?: boolean }, command: Command) => {
      const { store, output } = await openFor(command, opts.db);
      try {
        const page = await store.sessions.list({ now: Date.now(), limit: Math.max(1, opts.limit) });
        const rows = page.sessions.map((s) => ({
          ...s,
          createdAt: iso(s.createdAt),
          updatedAt: iso(s.updatedAt),
          expiresAt: iso(s.expiresAt),
        }));
        if (opts.json) output.json({ sessions: rows, more: page.nextCursor !== null });
        else if (output.isTTY) {
          if (rows.length === 0) output.out('no live sessions');
          else
            output.out(
              formatTable(
                ['ID', 'PROFILE', 'TURNS', 'UPDATED', 'EXPIRES'],
                rows.map((s) => [s.id, s.profile, String(s.turns), s.updatedAt, s.expiresAt]),
                output.columns,
              ),
            );
        } else {
          for (const s of rows)
            output.out(`id=${s.id} profile=${s.profile} turns=${s.turns} updated=${s.updatedAt} expires=${s.expiresAt}`);
        }
      } finally {
        await store.close();
      }
    });

  dbOption(sessions.command('show'))
    .description("A session's messages")
    .argument('<id>')
    .option('--json', 'print {"id", "messages", "createdAt", "updatedAt", "expiresAt"} as JSON')
    .action(async (id: string, opts: { db?: string; json?: boolean }, command: Command) => {
      const { store, output } = await openFor(command, opts.db);
      try {
        const session = await store.sessions.get(id, Date.now());
        if (!session)
          throw new NotFoundError(`no live session "${id}"`, { next: 'See cs-llm sessions list (expired sessions are not shown).' });
        if (opts.json) {
          output.json({
            ...session,
            createdAt: iso(session.createdAt),
            updatedAt: iso(session.updatedAt),
            expiresAt: iso(session.expiresAt),
          });
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
        await store.close();
      }
    });

  dbOption(sessions.command('delete'))
    .description('Delete a session and its messages')
    .argument('<id>')
    .action(async (id: string, opts: { db?: string }, command: Command) => {
      const { loaded, output } = contextFor(command, { store: { path: opts.db } });
      const open = () => openConfiguredStore(loaded.config, loaded.paths);
      await withStoreAdmin(loaded, { open }, async (admin, { file }) => {
        const { deleted, scrubbed } = await admin.deleteSession({ id });
        if (!deleted) throw new NotFoundError(`no session "${id}"`, { next: 'See cs-llm sessions list.' });
        scrubbedOrFail(scrubbed, file, `deleted session ${id}`);
        output.out(`deleted session ${id}; its text is gone from the database and WAL files`);
      });
    });

  dbOption(sessions.command('prune'))
    .description('Delete expired sessions, and with --older-than also sessions unused for that long')
    .option('--older-than <duration>', 'e.g. 30d, 12h: also delete sessions not updated for this long')
    .option('--json', 'print {"expired", "old"} as JSON')
    .action(async (opts: { db?: string; olderThan?: string; json?: boolean }, command: Command) => {
      const age = opts.olderThan === undefined ? null : parseDuration(opts.olderThan);
      const { loaded, output } = contextFor(command, { store: { path: opts.db } });
      const open = () => openConfiguredStore(loaded.config, loaded.paths);
      await withStoreAdmin(loaded, { open }, async (admin, { file }) => {
        const { expired, old, scrubbed } = await admin.pruneSessions({ olderThanMs: age });
        scrubbedOrFail(scrubbed, file, `deleted ${expired + old} session(s)`);
        if (opts.json) output.json({ expired, old });
        else output.out(`deleted ${expired} expired session(s)${age === null ? '' : ` and ${old} not updated for ${opts.olderThan}`}`);
      });
    });

  dbOption(sessions.command('export'))
    .description(
      'Everything kept about one session, expired or not, as JSON: its messages with times and its audit records (a subject access request)',
    )
    .argument('<id>')
    .action(async (id: string, opts: { db?: string }, command: Command) => {
      const { store, output } = await openFor(command, opts.db);
      try {
        const session = await store.sessions.export(id);
        const audit = await store.audit.forSession(id);
        if (!session && audit.length === 0)
          throw new NotFoundError(`nothing is kept about session "${id}"`, {
            next: 'See cs-llm sessions list; deleted and swept sessions leave only audit records.',
          });
        output.json({
          id,
          exportedAt: new Date().toISOString(),
          database: store.file,
          session: session
            ? {
                profile: session.profile,
                turns: session.turns,
                createdAt: iso(session.createdAt),
                updatedAt: iso(session.updatedAt),
                expiresAt: iso(session.expiresAt),
                messages: session.messages.map(({ createdAt, ...m }) => ({ ...m, createdAt: iso(createdAt) })),
              }
            : null,
          audit: audit.map((r) => ({ ...r, at: iso(r.at) })),
        });
      } finally {
        await store.close();
      }
    });
}
