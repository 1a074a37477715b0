import type { Command } from 'commander';
import { ExitCode } from '../../core/errors.js';
import type { CheckStatus } from '../../doctor/checks.js';
import { contextFor } from '../context.js';
import { paint, type Style } from '../output.js';

const statusStyle: Record<CheckStatus, Style> = { ok: 'green', warn: 'yellow', fail: 'red' };

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

export function register(program: Command): void {
  program
    .command('doctor')
    .description('Check this host for what `cs-llm up` needs: Node, Docker, NVIDIA runtime, GPUs, disk, ports')
    .option('--json', 'print {"checks": [{"name", "status", "detail", "fix"}]} as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const { blocksUp, runChecks } = await import('../../doctor/checks.js');
      const checks = await runChecks({ config: loaded.config, paths: loaded.paths });
      if (blocksUp(checks)) process.exitCode = ExitCode.environment;
      if (opts.json) {
        output.json({ checks: checks.map(({ name, status, detail, fix }) => ({ name, status, detail, fix })) });
        return;
      }
      if (output.isTTY) {
        // Details are the point of the doctor: wrap them under their column instead of cutting them.
        const nameWidth = Math.max(...checks.map((c) => c.name.length)) + 2;
        const indent = 8 + nameWidth;
        output.out(`${'STATUS'.padEnd(8)}${'CHECK'.padEnd(nameWidth)}DETAIL`);
        for (const c of checks) {
          const [first, ...rest] = wrap(c.detail, Math.max(20, output.columns - indent));
          output.out(`${paint(output, statusStyle[c.status], c.status.padEnd(8))}${c.name.padEnd(nameWidth)}${first ?? ''}`);
          for (const line of rest) output.out(`${' '.repeat(indent)}${line}`);
        }
      } else {
        for (const c of checks) output.out(`${c.status}  ${c.name}  ${c.detail}`);
      }
      const withFix = checks.filter((c) => c.fix && c.status !== 'ok');
      if (withFix.length) output.out('');
      for (const c of withFix) output.out(`fix ${c.name}: ${c.fix}`);
      const failing = checks.filter((c) => c.neededByUp && c.status === 'fail').map((c) => c.name);
      const noDocker = checks.some((c) => c.name === 'docker' && c.status === 'fail');
      if (failing.length) output.out(`cs-llm up cannot run yet: ${failing.join(', ')} failed`);
      else if (noDocker) {
        const local = loaded.config.engine.kind === 'sim' ? 'the simulator' : 'the cpu engine';
        output.out(`nothing stops cs-llm up; without Docker it runs ${local} as a local process (vllm needs Docker)`);
      } else output.out('nothing stops cs-llm up');
    });
}
