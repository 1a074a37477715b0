import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../core/config.js';
import { ConfigError, EnvironmentError, UsageError } from '../../core/errors.js';
import type { Store } from '../../store/store.js';
import { contextFor } from '../context.js';

// The key handling loads node:crypto: in the commands that need it, not at every command's start (#21).
const storeCrypto = () => import('../../store/crypto.js');

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

/** The store without redaction or a content key: what a rotation or a scrub needs. */
async function openPlain(loaded: LoadedConfig): Promise<Store> {
  const { openStore, storeFile } = await import('../../store/store.js');
  return openStore({
    file: storeFile(loaded.config, loaded.paths),
    synchronous: loaded.config.store.synchronous,
    busyTimeoutMs: loaded.config.store.busyTimeoutMs,
  });
}

export function register(program: Command): void {
  const store = program
    .command('store')
    .description('The session database: encryption keys, key rotation, scrubbing deleted text from the files');
  const dbOption = (c: Command) => c.option('--db <path>', 'database file (default: cs-llm.db in the state directory)');

  store
    .command('new-key')
    .description('Write a new random encryption key (base64 of 32 bytes) to a file readable only by you, and print its id')
    .requiredOption('--out <file>', 'the key file to create (never overwritten)')
    .action(async (opts: { out: string }, command: Command) => {
      const { output } = await contextFor(command);
      const { keyIdOf, newKeyText } = await storeCrypto();
      const text = newKeyText();
      let fd: number;
      try {
        fd = openSync(opts.out, 'wx', 0o600);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new UsageError(
          code === 'EEXIST'
            ? `${opts.out} already exists; a key file is never overwritten`
            : `cannot create ${opts.out}: ${(err as Error).message}`,
          {
            next:
              code === 'EEXIST'
                ? 'Pick another file name (keep the old key until a rotation has moved every row off it).'
                : 'Check the directory exists and is writable.',
          },
        );
      }
      try {
        writeSync(fd, text);
      } finally {
        closeSync(fd);
      }
      output.out(`key ${keyIdOf(Buffer.from(text.trim(), 'base64'))} written to ${opts.out}`);
    });

  store
    .command('key-id')
    .description('Print the id of the configured key (CS_LLM_STORE_KEY or store.encryption.keyFile), or of --key-file')
    .option('--key-file <file>', 'a key file to identify instead')
    .action(async (opts: { keyFile?: string }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const { configuredKey, keyIdOf, readKeyFile } = await storeCrypto();
      const key = opts.keyFile ? readKeyFile(opts.keyFile) : configuredKey(loaded.config.store);
      if (!key)
        throw new ConfigError('no encryption key is configured', {
          next: 'Set CS_LLM_STORE_KEY or store.encryption.keyFile, or pass --key-file.',
        });
      output.out(keyIdOf(key));
    });

  dbOption(store.command('rotate-key'))
    .description('Re-encrypt every stored message with a new key (plain-text rows too), then scrub the old values from the files')
    .requiredOption('--new-key-file <file>', 'the new key (cs-llm store new-key --out FILE)')
    .action(async (opts: { db?: string; newKeyFile: string }, command: Command) => {
      const { loaded, output } = await contextFor(command, { store: { path: opts.db } });
      const { configuredKey, createCipher, readKeyFile } = await storeCrypto();
      // Read here: a bad key file is reported before anything changes, and a running daemon gets the key itself,
      // so it need not be able to read the file (a sandboxed service user cannot read a file under /root).
      const key = readKeyFile(opts.newKeyFile).toString('base64');
      const oldKey = configuredKey(loaded.config.store);
      const { withStoreAdmin } = await import('../store-admin.js');
      const { result, daemon } = await withStoreAdmin(
        loaded,
        { open: () => openPlain(loaded), from: oldKey ? [createCipher(oldKey)] : [] },
        async (admin, { file, daemon: pid }) => {
          const rotated = await admin.rotateKey({ key });
          if (!rotated.scrubbed) {
            throw new EnvironmentError(
              `re-encrypted ${rotated.rows} message(s) with key ${rotated.keyId}, but old values may remain in ${file}-wal: another process kept the database busy`,
              { next: 'Run cs-llm store scrub once nothing else uses the database.' },
            );
          }
          return { result: rotated, daemon: pid };
        },
      );
      output.out(
        `re-encrypted ${result.rows} message(s) with key ${result.keyId}${result.alreadyCurrent ? ` (${result.alreadyCurrent} already were)` : ''}; ${result.retired.length ? `key ${result.retired.join(', ')} no longer opens them` : 'no plain-text contents remain'}`,
      );
      output.out(
        `${daemon === null ? 'now' : `the running daemon (pid ${daemon}) stores new turns with it already; before it starts again,`} set store.encryption.keyFile to ${opts.newKeyFile} (or CS_LLM_STORE_KEY to its contents)${daemon === null ? ' before the daemon starts again' : ''}`,
      );
    });

  dbOption(store.command('scrub'))
    .description('Make deleted text gone from the files now: a TRUNCATE checkpoint (waits up to 10 s for other readers)')
    .option(
      '--rewrite',
      "first rewrite the database from its live rows (SQLite: VACUUM; PostgreSQL: VACUUM FULL of the tables holding text): also removes copies of deleted rows left in pages' free space; holds the database while it runs, seconds per GB",
    )
    .action(async (opts: { db?: string; rewrite?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command, { store: { path: opts.db } });
      const { withStoreAdmin } = await import('../store-admin.js');
      const sizeOf = (file: string) => statSync(file, { throwIfNoEntry: false })?.size;
      let before: number | undefined;
      await withStoreAdmin(loaded, { open: () => openPlain(loaded) }, async (admin, { file }) => {
        before = sizeOf(file);
        // An older daemon refuses a field it does not know, so the field goes only when asked for.
        if (!(await admin.scrub(opts.rewrite ? { rewrite: true } : {})).scrubbed) {
          throw new EnvironmentError(`another process kept ${file} busy for 10 s; the WAL was not emptied`, {
            next: 'Try again when the database is idle.',
          });
        }
        const { isPostgresUrl } = await import('../../store/location.js');
        if (opts.rewrite) {
          const after = sizeOf(file);
          const sizes = before !== undefined && after !== undefined ? ` (${mib(before)} -> ${mib(after)})` : '';
          output.out(
            isPostgresUrl(file)
              ? `rewrote the tables of ${file} from their live rows (VACUUM FULL)`
              : `rewrote ${file} from its live rows${sizes}`,
          );
        }
        output.out(
          isPostgresUrl(file)
            ? `vacuumed the tables of ${file}: no dead row versions are left in them (WAL segments and backups still hold deleted text until they are recycled or expire)`
            : `scrubbed ${file}: the WAL is empty and deleted rows are zeroed in the database file`,
        );
      });
    });

  store
    .command('migrate')
    .description(
      'Copy everything from a SQLite database to PostgreSQL (sessions, responses, conversations, keys, tenants, usage, the audit log), then verify the audit chain there',
    )
    .requiredOption('--from <file>', 'the SQLite database file (stop the daemon that uses it first)')
    .requiredOption('--to <url>', 'the PostgreSQL database, postgres://user@host:5432/db (created beforehand, empty)')
    .option('--replace', 'delete what the target already holds instead of refusing (stop every daemon on it first)')
    .option(
      '--key-file <file>',
      'the audit key file to verify the chain with (default: store.auditKeyFile, else audit.key in the state directory)',
    )
    .option('--json', 'print {"copied": {table: rows}, "audit": {...}} as JSON')
    .action(async (opts: { from: string; to: string; replace?: boolean; keyFile?: string; json?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const [{ isPostgresUrl }, { auditKeyFile }] = await Promise.all([
        import('../../store/location.js'),
        import('../../store/audit-key.js'),
      ]);
      if (!isPostgresUrl(opts.to)) throw new UsageError(`--to must be a postgres:// URL, not "${opts.to}"`);
      if (isPostgresUrl(opts.from)) throw new UsageError('--from is the SQLite database file to copy from');
      const { migrateSqliteToPostgres } = await import('../../store/store-migrate.js');
      const result = await migrateSqliteToPostgres({
        from: opts.from,
        to: opts.to,
        ...(opts.replace ? { replace: true } : {}),
        auditKeyFile: opts.keyFile ?? auditKeyFile(loaded.config, loaded.paths),
        ...(opts.json ? {} : { onTable: (table, rows) => output.err(`copied ${rows} row(s) of ${table}`) }),
      });
      const { audit } = result;
      if (opts.json) output.json({ copied: result.copied, audit: { ok: audit.ok, records: audit.records, broken: audit.broken ?? null } });
      else if (audit.ok) output.out(`copied everything; the audit chain verifies on the target (${audit.records} record(s))`);
      if (!audit.ok)
        throw new EnvironmentError(
          `copied everything, but the audit chain does not verify on the target at record ${audit.broken!.seq}: ${audit.broken!.reason}`,
          {
            next: audit.broken!.keyMissing
              ? 'Pass the audit key file the source was chained with (--key-file), and run cs-llm audit verify --db <url>.'
              : 'Run cs-llm audit verify on the SQLite file: if it fails there too, the source was already broken.',
          },
        );
    });
}
