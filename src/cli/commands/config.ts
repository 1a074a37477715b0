import type { Command } from 'commander';
import type { Config } from '../../core/config.js';
import { contextFor } from '../context.js';

/** `config show` is pasted into tickets and chats: secrets from the file or environment never appear in it. */
export function maskSecrets(config: Config): Config {
  const masked = structuredClone(config);
  if (masked.daemon.upstreamApiKey) masked.daemon.upstreamApiKey = '[set, hidden]';
  if (masked.store.key) masked.store.key = '[set, hidden]';
  return masked;
}

export function register(program: Command): void {
  const config = program.command('config').description('Show the configuration in force and where it comes from');
  config
    .command('show')
    .description('Print the merged configuration (defaults < config file < CS_LLM_* environment < flags) as JSON')
    .action(async (_opts, command: Command) => {
      const { loaded, output } = await contextFor(command);
      output.json({ file: loaded.file, paths: loaded.paths, config: maskSecrets(loaded.config) });
    });
  config
    .command('path')
    .description('Print the config file path')
    .action(async (_opts, command: Command) => {
      const { loaded, output } = await contextFor(command);
      output.out(loaded.paths.configFile);
    });
}
