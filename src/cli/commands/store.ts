import { closeSync, openSync, writeSync } from 'node:fs';
import type { Command } from 'commander';
import { ConfigError, ConflictError, EnvironmentError, UsageError } from '../../core/errors.js';
import { daemonProcess, readDaemonState } from '../../daemon/lifecycle.js';
import { configuredKey, createCipher, keyIdOf, newKeyText, readKeyFile } from '../../store/crypto.js';
import { openStore, storeFile } from '../../store/store.js';
import { contextFor } from '../context.js';

export function register(program: Command): void {
  const store = program
    .command('store')
    .description('The session database: encryption keys, key rotation, scrubbing deleted text from the files');
  const dbOption = (c: Command) => c.option('--db <path>', 'database file (default: cs-llm.db in the state directory)');

  store
    .command('new-key')
    .description('Write a new random encryption key (base64 of 32 bytes) to a file readable only by you, and print its id')
    .requiredOption('--out <file>', 'the key file to create (never overwritten)')
    .action((opts: { out: string }, command: Command) => {
      const { output } = contextFor(command);
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
    .action((opts: { keyFile?: string }, command: Command) => {
      const { loaded, output } = contextFor(command);
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
      const { loaded, output } = contextFor(command, { store: { path: opts.db } });
      const to = createCipher(readKeyFile(opts.newKeyFile));
      const oldKey = configuredKey(loaded.config.store);
      const from = oldKey ? [createCipher(oldKey)] : [];
      // A running daemon would go on writing with the old key.
      const state = readDaemonState(loaded.paths);
      if (state && daemonProcess(state) === 'running') {
        throw new ConflictError(`the daemon (pid ${state.pid}) is running and writes with the current key`, {
          next: 'Stop it first (cs-llm daemon stop), rotate, point the config at the new key, and start it again.',
        });
      }
      const s = await openStore({
        file: storeFile(loaded.config, loaded.paths),
        synchronous: loaded.config.store.synchronous,
        busyTimeoutMs: loaded.config.store.busyTimeoutMs,
      });
      try {
        const result = await s.maintenance.rotateKey({ from, to });
        if (!result.scrubbed) {
          throw new EnvironmentError(
            `re-encrypted ${result.rows} message(s) with key ${to.keyId}, but old values may remain in ${s.file}-wal: another process kept the database busy`,
            {
              next: 'Run cs-llm store scrub once nothing else uses the database.',
            },
          );
        }
        output.out(
          `re-encrypted ${result.rows} message(s) with key ${to.keyId}${result.alreadyCurrent ? ` (${result.alreadyCurrent} already were)` : ''}; ${from.length ? `key ${from[0]!.keyId} no longer opens them` : 'no plain-text contents remain'}`,
        );
        output.out(
          `now set store.encryption.keyFile to ${opts.newKeyFile} (or CS_LLM_STORE_KEY to its contents) before the daemon starts again`,
        );
      } finally {
        await s.close();
      }
    });

  dbOption(store.command('scrub'))
    .description('Make deleted text gone from the files now: a TRUNCATE checkpoint (waits up to 10 s for other readers)')
    .action(async (opts: { db?: string }, command: Command) => {
      const { loaded, output } = contextFor(command, { store: { path: opts.db } });
      const s = await openStore({
        file: storeFile(loaded.config, loaded.paths),
        synchronous: loaded.config.store.synchronous,
        busyTimeoutMs: loaded.config.store.busyTimeoutMs,
      });
      try {
        if (!(await s.maintenance.scrub(10_000))) {
          throw new EnvironmentError(`another process kept ${s.file} busy for 10 s; the WAL was not emptied`, {
            next: 'Try again when the daemon is idle.',
          });
        }
        output.out(`scrubbed ${s.file}: the WAL is empty and deleted rows are zeroed in the database file`);
      } finally {
        await s.close();
      }
    });
}
