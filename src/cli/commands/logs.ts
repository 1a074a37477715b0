import type { Command } from 'commander';
import { contextFor, intFlag } from '../context.js';
import { terminalStream } from '../output.js';

export function register(program: Command): void {
  program
    .command('logs')
    .description("Print the engine's logs (stdout and stderr as the engine wrote them)")
    .option('-f, --follow', 'keep printing new lines until Ctrl-C or the engine stops')
    .option('--tail <n>', 'only the last n lines', intFlag('--tail', { min: 0 }))
    .action(async (opts: { follow?: boolean; tail?: number }, command: Command) => {
      const { loaded } = await contextFor(command);
      const { engineLogs } = await import('../../engine/manage.js');
      const abort = new AbortController();
      const onSignal = () => abort.abort();
      process.once('SIGINT', onSignal);
      try {
        await engineLogs({
          paths: loaded.paths,
          follow: Boolean(opts.follow),
          tail: opts.tail,
          // The engine's output as it wrote it, less control characters (core/terminal-text.ts).
          stdout: terminalStream(process.stdout),
          stderr: terminalStream(process.stderr),
          signal: abort.signal,
        });
      } finally {
        process.off('SIGINT', onSignal);
      }
    });
}
