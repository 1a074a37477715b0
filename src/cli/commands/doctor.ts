import type { Command } from 'commander';
import { ExitCode } from '../../core/errors.js';
import { blocksUp, runChecks, type CheckStatus } from '../../doctor/checks.js';
import { contextFor } from '../context.js';
import { formatTable, paint, type Style } from '../output.js';

const statusStyle: Record<CheckStatus, Style> = { ok: 'green', warn: 'yellow', fail: 'red' };

export function register(program: Command): void {
  program
    .command('doctor')
    .description('Check this host for what `cs-llm up` needs: Node, Docker, NVIDIA runtime, GPUs, disk, ports')
    .option('--json', 'print {"checks": [{"name", "status", "detail", "fix"}]} as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { loaded, output } = contextFor(command);
      const checks = await runChecks({ config: loaded.config, paths: loaded.paths });
      if (blocksUp(checks)) process.exitCode = ExitCode.environment;
      if (opts.json) {
        output.json({ checks: checks.map(({ name, status, detail, fix }) => ({ name, status, detail, fix })) });
        return;
      }
      const rows = checks.map((c) => [paint(output, statusStyle[c.status], c.status), c.name, c.detail]);
      if (output.isTTY) {
        // paint adds escape codes that formatTable would count as width; pad the status by hand.
        const plain = formatTable(['STATUS', 'CHECK', 'DETAIL'], checks.map((c) => [c.status, c.name, c.detail]), output.columns);
        const lines = plain.split('\n');
        output.out([lines[0]!, ...lines.slice(1).map((line, i) => paint(output, statusStyle[checks[i]!.status], line.slice(0, 4)) + line.slice(4))].join('\n'));
      } else {
        for (const row of rows) output.out(row.join('  '));
      }
      const withFix = checks.filter((c) => c.fix && c.status !== 'ok');
      if (withFix.length) output.out('');
      for (const c of withFix) output.out(`fix ${c.name}: ${c.fix}`);
      const failing = checks.filter((c) => c.neededByUp && c.status === 'fail').map((c) => c.name);
      output.out(failing.length ? `cs-llm up cannot run yet: ${failing.join(', ')} failed` : 'nothing stops cs-llm up');
    });
}
