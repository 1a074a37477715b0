import type { Command } from 'commander';
import type { EngineStatus } from '../../engine/manage.js';
import { contextFor } from '../context.js';
import { formatTable, paint, type Output } from '../output.js';

export function formatUptime(seconds: number | null): string {
  if (seconds === null) return '-';
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m${seconds % 60}s`;
  return `${Math.floor(seconds / 3600)}h${Math.floor((seconds % 3600) / 60)}m`;
}

function stateText(e: EngineStatus, output: Output): string {
  if (e.mode === 'container' && e.crashLoop) return paint(output, 'red', `${e.state}, crash loop (restarted ${e.restartCount}x)`);
  const text = e.mode === 'container' && e.exitCode !== null ? `${e.state} (exit ${e.exitCode})` : e.state;
  return e.state === 'running' ? text : paint(output, 'yellow', text);
}

export function register(program: Command): void {
  program
    .command('status')
    .description('Show the engine: state, restarts (a crash loop), health, model, port, uptime, GPUs')
    .option('--json', 'print {"engines": [...], "daemon", "dockerProblem"} as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const { engineStatus } = await import('../../engine/manage.js');
      const report = await engineStatus({ paths: loaded.paths });
      if (opts.json) {
        output.json(report);
        return;
      }
      const d = report.daemon;
      const daemonLine = d.running ? `daemon=running url=${d.url} pid=${d.pid} healthy=${d.healthy}` : 'daemon=stopped';
      if (report.engines.length === 0) {
        output.out(`no engine${report.dockerProblem ? ` (no Docker engine: ${report.dockerProblem})` : ''}; start one with cs-llm up`);
        if (d.running) output.out(daemonLine);
        return;
      }
      if (output.isTTY) {
        const rows = report.engines.map((e) => [
          e.mode === 'container' ? e.name : `process ${e.pid}`,
          stateText(e, output),
          e.mode === 'container' ? String(e.restartCount) : '0',
          e.health,
          e.model,
          e.baseUrl ?? '-',
          formatUptime(e.uptimeSeconds),
          e.mode === 'container' ? e.gpus : 'none',
        ]);
        output.out(
          formatTable(
            ['ENGINE', 'STATE', 'RESTARTS', 'HEALTH', 'MODEL', 'ENDPOINT', 'UPTIME', 'GPUS'],
            rows,
            output.columns > 0 ? output.columns : Infinity,
          ),
        );
        output.out(
          d.running
            ? `chat daemon: ${d.url} (pid ${d.pid}), ${d.healthy ? 'healthy' : paint(output, 'red', 'not answering')}`
            : 'chat daemon: not running',
        );
        return;
      }
      // Plain key=value lines, one engine per line, for scripts without --json.
      for (const e of report.engines) {
        const fields = [
          `engine=${e.mode === 'container' ? e.name : `process:${e.pid}`}`,
          `state=${e.state}`,
          `restarts=${e.mode === 'container' ? e.restartCount : 0}`,
          `crash_loop=${e.mode === 'container' && e.crashLoop}`,
          `health=${e.health}`,
          `model=${e.model}`,
          `served_name=${e.servedName}`,
          `endpoint=${e.baseUrl ?? '-'}`,
          `uptime_s=${e.uptimeSeconds ?? '-'}`,
          `gpus=${e.mode === 'container' ? e.gpus : 'none'}`,
        ];
        output.out(fields.join(' '));
      }
      output.out(daemonLine);
    });
}
