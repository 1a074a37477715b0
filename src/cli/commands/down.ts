import type { Command } from 'commander';
import { contextFor } from '../context.js';

export function register(program: Command): void {
  program
    .command('down')
    .description('Stop the chat daemon and remove the engine (our containers, found by label, or the local engine process)')
    .option('--purge', 'also remove the engine images they ran and the local engine process log (downloaded weights stay)')
    .option('--json', 'print what was removed as JSON')
    .action(async (opts: { purge?: boolean; json?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const { engineDown } = await import('../../engine/manage.js');
      const report = await engineDown({ paths: loaded.paths, purge: Boolean(opts.purge) });
      if (opts.json) {
        output.json(report);
        return;
      }
      for (const name of report.containers) output.out(`removed container ${name}`);
      for (const image of report.images) output.out(`removed image ${image}`);
      for (const pid of report.processes) output.out(`stopped engine process ${pid}`);
      if (report.daemon !== null) output.out(`stopped chat daemon ${report.daemon}`);
      if (report.containers.length + report.processes.length === 0) {
        output.out(`no engine to stop${report.dockerProblem ? ` (no Docker engine: ${report.dockerProblem})` : ''}`);
      }
    });
}
