import type { Command } from 'commander';
import { UsageError, NotFoundError } from '../../core/errors.js';
import { DEFAULT_TENANT, isTenantName } from '../../core/tenant.js';
import { contextFor } from '../context.js';
import { formatTable } from '../output.js';

async function openFor(command: Command, db?: string) {
  const { loaded, output } = await contextFor(command, { store: { path: db } });
  const { openStore, storeFile } = await import('../../store/store.js');
  const store = await openStore({
    file: storeFile(loaded.config, loaded.paths),
    synchronous: 'FULL',
    busyTimeoutMs: loaded.config.store.busyTimeoutMs,
  });
  return { store, output, config: loaded.config };
}

/** "a,b" -> ["a", "b"]: profile names, at least one. */
function profileList(text: string): string[] {
  const names = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  if (names.length === 0) throw new UsageError('--profiles needs at least one profile name, e.g. --profiles support,sales');
  return names;
}

export function register(program: Command): void {
  const keys = program
    .command('keys')
    .description('API keys for the daemon: once one exists, every request needs Authorization: Bearer <key>');

  keys
    .command('create')
    .description('Create a key and print it once (only its hash is stored)')
    .argument('<name>', 'what the key is for, e.g. the app that uses it')
    .option('--tenant <name>', `the tenant whose sessions the key reaches (default: ${DEFAULT_TENANT})`)
    .option('--profiles <a,b>', 'the profiles it may name with X-Profile, its default first (default: every profile)')
    .option('--admin', "an operator's key: every tenant's sessions, /metrics")
    .option('--db <path>', 'session database file')
    .option('--json', 'print {"key", "id", "name", "prefix", "tenant", "profiles", "admin"} as JSON')
    .action(
      async (
        name: string,
        opts: { db?: string; tenant?: string; profiles?: string; admin?: boolean; json?: boolean },
        command: Command,
      ) => {
        if (!/^[\w .:@-]{1,64}$/.test(name)) throw new UsageError(`key name "${name}" must be 1-64 letters, digits, spaces or . _ : @ -`);
        const tenant = opts.tenant ?? DEFAULT_TENANT;
        if (!isTenantName(tenant)) throw new UsageError(`--tenant "${tenant}" must be 1-64 letters, digits, ".", "_" or "-"`);
        const profiles = opts.profiles === undefined ? null : profileList(opts.profiles);
        const { store, output, config } = await openFor(command, opts.db);
        try {
          const unknown = (profiles ?? []).filter((p) => p !== config.defaultProfile && !Object.hasOwn(config.profiles, p));
          const { key, info } = await store.keys.create(name, Date.now(), { tenant, profiles, admin: opts.admin === true });
          if (opts.json)
            output.json({
              key,
              id: info.id,
              name: info.name,
              prefix: info.prefix,
              tenant: info.tenant,
              profiles: info.profiles,
              admin: info.admin,
            });
          else {
            output.out(key);
            output.err(
              `created key "${name}" (${info.prefix}...) for tenant ${info.tenant}${info.admin ? ', admin' : ''}${info.profiles ? `, profiles ${info.profiles.join(', ')}` : ''}; it is shown only now: store it safely. A running daemon requires keys from its next request on.`,
            );
          }
          // Not refused: the profile may be added to the config later; until then the daemon answers 400 for it.
          if (unknown.length > 0)
            output.err(
              `note: profile(s) ${unknown.join(', ')} are not configured; the daemon answers 400 unknown_profile for them until profiles.NAME is in the config`,
            );
        } finally {
          await store.close();
        }
      },
    );

  keys
    .command('list')
    .description('List keys (prefix, name, created, revoked); the keys themselves cannot be shown again')
    .option('--db <path>', 'session database file')
    .option('--json', 'print the keys as JSON')
    .action(async (opts: { db?: string; json?: boolean }, command: Command) => {
      const { store, output } = await openFor(command, opts.db);
      try {
        const list = await store.keys.list();
        if (opts.json)
          output.json({
            keys: list.map((k) => ({
              ...k,
              createdAt: new Date(k.createdAt).toISOString(),
              revokedAt: k.revokedAt && new Date(k.revokedAt).toISOString(),
            })),
          });
        else if (list.length === 0) output.out(output.isTTY ? 'no keys: the daemon answers loopback clients without one' : '');
        else if (output.isTTY) {
          output.out(
            formatTable(
              ['PREFIX', 'NAME', 'TENANT', 'PROFILES', 'ADMIN', 'CREATED', 'STATUS', 'ID'],
              list.map((k) => [
                k.prefix,
                k.name,
                k.tenant,
                k.profiles ? k.profiles.join(',') : '(all)',
                k.admin ? 'yes' : 'no',
                new Date(k.createdAt).toISOString(),
                k.revokedAt ? `revoked ${new Date(k.revokedAt).toISOString()}` : 'active',
                k.id,
              ]),
              output.columns,
            ),
          );
        } else {
          for (const k of list)
            output.out(
              `prefix=${k.prefix} name=${JSON.stringify(k.name)} status=${k.revokedAt ? 'revoked' : 'active'} id=${k.id} tenant=${k.tenant} profiles=${k.profiles ? k.profiles.join(',') : '*'} admin=${k.admin}`,
            );
        }
      } finally {
        await store.close();
      }
    });

  keys
    .command('revoke')
    .description('Revoke a key by its prefix or id; it stops working on the next request')
    .argument('<prefix-or-id>')
    .option('--db <path>', 'session database file')
    .action(async (which: string, opts: { db?: string }, command: Command) => {
      const { store, output } = await openFor(command, opts.db);
      try {
        const revoked = await store.keys.revoke(which, Date.now());
        if (!revoked)
          throw new NotFoundError(`no active key with prefix or id "${which}" (or more than one matches)`, {
            next: 'See cs-llm keys list.',
          });
        output.out(`revoked key "${revoked.name}" (${revoked.prefix}...)`);
      } finally {
        await store.close();
      }
    });
}
