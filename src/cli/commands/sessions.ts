import type { Command } from 'commander';
import { EnvironmentError, NotFoundError, UsageError } from '../../core/errors.js';
import type { ChatMessage } from '../../core/messages.js';
import { DEFAULT_TENANT, isTenantName } from '../../core/tenant.js';
import { contextFor, intFlag } from '../context.js';
import { formatTable } from '../output.js';
import { erasureNote, isPostgresUrl } from '../../store/location.js';

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** "30d", "12h", "90m", "45s", "2w" -> milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+)\s*([smhdw])$/.exec(text.trim());
  if (!match) throw new UsageError(`"${text}" is not a duration`, { next: 'Write a number and a unit: 45s, 90m, 12h, 30d or 2w.' });
  return Number(match[1]) * UNITS[match[2]!]!;
}

/** The store's modules, loaded when a command runs: `cs-llm --help` does not load the store. */
async function storeModules() {
  const [{ openConfiguredStore }, { withStoreAdmin }] = await Promise.all([
    import('../../store/protection.js'),
    import('../store-admin.js'),
  ]);
  return { openConfiguredStore, withStoreAdmin };
}

/** The store with the config's redaction, encryption key and retention: the same protection as the daemon's. */
async function openFor(command: Command, db?: string) {
  const { loaded, output } = await contextFor(command, { store: { path: db } });
  const { openConfiguredStore } = await storeModules();
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
  if (isPostgresUrl(file))
    throw new EnvironmentError(
      `${what}, but the VACUUM of its tables did not finish within 10 s: their dead row versions still hold the text`,
      {
        next: 'Run cs-llm store scrub --db <url> later (a running daemon also vacuums after its own deletions).',
      },
    );
  throw new EnvironmentError(`${what}, but the deleted text may still be in ${file}-wal: another process kept the database busy for 10 s`, {
    next: `Run cs-llm store scrub when the database is idle (a running daemon also keeps scrubbing after its own deletions).`,
  });
}

/** On PostgreSQL, the JSON says what a deletion leaves (erasureNote); on SQLite nothing is left to say. */
const remains = (file: string) => (isPostgresUrl(file) ? { remains: erasureNote(file, 'its') } : {});

function contentText(m: ChatMessage): string {
  if (typeof m.content === 'string') return m.content;
  if (Array.isArray(m.content))
    return m.content.map((p) => ((p as { text?: unknown }).text as string | undefined) ?? `[${(p as { type?: string }).type}]`).join(' ');
  return '';
}

const iso = (ms: number) => new Date(ms).toISOString();

/** --tenant's value, checked; `fallback` when not given. */
function tenantFlag(value: string | undefined, fallback: string): string;
function tenantFlag(value: string | undefined, fallback: null): string | null;
function tenantFlag(value: string | undefined, fallback: string | null): string | null {
  if (value === undefined) return fallback;
  if (!isTenantName(value)) throw new UsageError(`--tenant "${value}" must be 1-64 letters, digits, ".", "_" or "-"`);
  return value;
}

/** " of tenant T" for messages, nothing for the default tenant (messages read as before tenants). */
const inTenant = (tenant: string) => (tenant === DEFAULT_TENANT ? '' : ` of tenant ${tenant}`);

const TENANT_HELP = `the tenant the session belongs to (default: ${DEFAULT_TENANT})`;

export function register(program: Command): void {
  const sessions = program.command('sessions').description('Chat sessions stored by the daemon (reads the database directly)');
  const dbOption = (c: Command) => c.option('--db <path>', 'session database file (default: cs-llm.db in the state directory)');

  dbOption(sessions.command('list'))
    .description("Live sessions, the latest to expire (most recently used) first: every tenant's, or one tenant's")
    .option('--tenant <name>', "only this tenant's sessions")
    .option('--limit <n>', 'at most this many', intFlag('--limit', { min: 0 }), 50)
    .option('--json', 'print {"sessions": [...]} as JSON')
    .action(async (opts: { db?: string; tenant?: string; limit: number; json?: boolean }, command: Command) => {
      const tenant = tenantFlag(opts.tenant, null);
      const { store, output } = await openFor(command, opts.db);
      try {
        const page = await store.sessions.list({ tenant, now: Date.now(), limit: Math.max(1, opts.limit) });
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
                ['TENANT', 'ID', 'PROFILE', 'TURNS', 'UPDATED', 'EXPIRES'],
                rows.map((s) => [s.tenant, s.id, s.profile, String(s.turns), s.updatedAt, s.expiresAt]),
                output.columns,
              ),
            );
        } else {
          for (const s of rows)
            output.out(`tenant=${s.tenant} id=${s.id} profile=${s.profile} turns=${s.turns} updated=${s.updatedAt} expires=${s.expiresAt}`);
        }
      } finally {
        await store.close();
      }
    });

  dbOption(sessions.command('show'))
    .description("A session's messages")
    .argument('<id>')
    .option('--tenant <name>', TENANT_HELP)
    .option('--json', 'print {"id", "tenant", "messages", "createdAt", "updatedAt", "expiresAt"} as JSON')
    .action(async (id: string, opts: { db?: string; tenant?: string; json?: boolean }, command: Command) => {
      const tenant = tenantFlag(opts.tenant, DEFAULT_TENANT);
      const { store, output } = await openFor(command, opts.db);
      try {
        const session = await store.sessions.get(tenant, id, Date.now());
        if (!session)
          throw new NotFoundError(`no live session "${id}"${inTenant(tenant)}`, {
            next: 'See cs-llm sessions list (expired sessions are not shown; --tenant names another tenant).',
          });
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
    .description('Delete a session and its messages, or with --tenant T --all every session of a tenant')
    .argument('[id]')
    .option('--tenant <name>', TENANT_HELP)
    .option('--all', "every session of --tenant (erasing a tenant's conversations)")
    .option('--json', 'print {"tenant", "deleted"} as JSON')
    .action(async (id: string | undefined, opts: { db?: string; tenant?: string; all?: boolean; json?: boolean }, command: Command) => {
      if (opts.all && id !== undefined) throw new UsageError('give a session id or --all, not both');
      if (opts.all && opts.tenant === undefined)
        throw new UsageError('--all needs --tenant: name the tenant whose sessions to delete (e.g. --tenant default)');
      if (!opts.all && id === undefined) throw new UsageError('name the session to delete, or --tenant T --all for all of a tenant');
      const tenant = tenantFlag(opts.tenant, DEFAULT_TENANT);
      const { loaded, output } = await contextFor(command, { store: { path: opts.db } });
      const { openConfiguredStore, withStoreAdmin } = await storeModules();
      const open = () => openConfiguredStore(loaded.config, loaded.paths);
      await withStoreAdmin(loaded, { open }, async (admin, { file }) => {
        if (opts.all) {
          const { deleted, scrubbed } = await admin.deleteTenant({ tenant });
          scrubbedOrFail(scrubbed, file, `deleted ${deleted} session(s) of tenant ${tenant}`);
          if (opts.json) output.json({ tenant, deleted, ...remains(file) });
          else output.out(`deleted ${deleted} session(s) of tenant ${tenant}; ${erasureNote(file, 'their')}`);
          return;
        }
        // The tenant only when given: a daemon of the release before tenants then still does a plain delete.
        const { deleted, scrubbed } = await admin.deleteSession({ id: id!, ...(opts.tenant !== undefined ? { tenant } : {}) });
        if (!deleted) throw new NotFoundError(`no session "${id}"${inTenant(tenant)}`, { next: 'See cs-llm sessions list.' });
        scrubbedOrFail(scrubbed, file, `deleted session ${id}`);
        if (opts.json) output.json({ tenant, deleted: 1, ...remains(file) });
        else output.out(`deleted session ${id}${inTenant(tenant)}; ${erasureNote(file, 'its')}`);
      });
    });

  dbOption(sessions.command('prune'))
    .description('Delete expired sessions, and with --older-than also sessions unused for that long')
    .option('--older-than <duration>', 'e.g. 30d, 12h: also delete sessions not updated for this long')
    .option('--tenant <name>', "only this tenant's sessions (default: every tenant)")
    .option('--json', 'print {"expired", "old"} as JSON')
    .action(async (opts: { db?: string; olderThan?: string; tenant?: string; json?: boolean }, command: Command) => {
      const age = opts.olderThan === undefined ? null : parseDuration(opts.olderThan);
      const tenant = tenantFlag(opts.tenant, null);
      const { loaded, output } = await contextFor(command, { store: { path: opts.db } });
      const { openConfiguredStore, withStoreAdmin } = await storeModules();
      const open = () => openConfiguredStore(loaded.config, loaded.paths);
      await withStoreAdmin(loaded, { open }, async (admin, { file }) => {
        const { expired, old, scrubbed } = await admin.pruneSessions({ olderThanMs: age, ...(tenant !== null ? { tenant } : {}) });
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
    .option('--tenant <name>', TENANT_HELP)
    .action(async (id: string, opts: { db?: string; tenant?: string }, command: Command) => {
      const tenant = tenantFlag(opts.tenant, DEFAULT_TENANT);
      const { store, output } = await openFor(command, opts.db);
      try {
        const session = await store.sessions.export(tenant, id);
        const audit = await store.audit.forSession(tenant, id);
        if (!session && audit.length === 0)
          throw new NotFoundError(`nothing is kept about session "${id}"${inTenant(tenant)}`, {
            next: 'See cs-llm sessions list; deleted and swept sessions leave only audit records.',
          });
        output.json({
          id,
          tenant,
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
