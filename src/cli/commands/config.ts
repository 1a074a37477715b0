import type { Command } from 'commander';
import { contextFor } from '../context.js';

export function register(program: Command): void {
  const config = program.command('config').description('Show the configuration in force and where it comes from');
  config
    .command('show')
    .description('Print the merged configuration (defaults < config file < CS_LLM_* environment < flags) as JSON')
    .action((_opts, command: Command) => {
      const { loaded, output } = contextFor(command);
      output.json({ file: loaded.file, paths: loaded.paths, config: loaded.config });
    });
  config
    .command('path')
    .description('Print the config file path')
    .action((_opts, command: Command) => {
      const { loaded, output } = contextFor(command);
      output.out(loaded.paths.configFile);
    });
}
