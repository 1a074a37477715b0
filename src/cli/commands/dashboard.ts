import type { Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { Config } from '../../core/config.js';
import type { Paths } from '../../core/paths.js';
import { contextFor, intFlag } from '../context.js';

interface DashboardFlags {
  url?: string;
  interval?: string;
  apiKey?: string;
  count?: number;
}

/** "1s", "500ms", "2.5s", "1m", or a bare number of seconds -> milliseconds (at least 100 ms). */
export function parseInterval(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new UsageError(`--interval "${text}" is not a duration`, { next: 'Write a number and a unit: 500ms, 1s, 2s or 1m.' });
  const value = Number(match[1]);
  const ms = match[2] === 'ms' ? value : match[2] === 'm' ? value * 60_000 : value * 1000;
  if (ms < 100) throw new UsageError(`--interval ${text} is too short`, { next: 'Use 100ms or more; 1s is a good pace.' });
  return Math.round(ms);
}

/** The daemon to watch: --url, else the running daemon's own URL, else daemon.host:daemon.port. */
export async function daemonUrlFor(config: Config, paths: Paths, flag?: string): Promise<string> {
  if (flag) return flag;
  // The state file's module loads node:child_process: here, not at every command's start (#21).
  const { readDaemonState } = await import('../../daemon/lifecycle.js');
  const running = readDaemonState(paths)?.url;
  if (running) return running;
  const host = config.daemon.host === '0.0.0.0' || config.daemon.host === '::' ? '127.0.0.1' : config.daemon.host;
  return `http://${host.includes(':') ? `[${host}]` : host}:${config.daemon.port}`;
}

export function register(program: Command): void {
  program
    .command('dashboard')
    .description("Live view of the daemon, the engine and the GPUs from the daemon's /metrics; q quits")
    .option('--url <url>', 'daemon URL (default: the running daemon, else daemon.host:daemon.port)')
    .option('--interval <duration>', 'refresh interval, e.g. 1s or 500ms', '1s')
    .option('--api-key <key>', 'daemon API key (default: $CS_LLM_API_KEY); never shown')
    .option('--count <n>', 'without a terminal: stop after n lines', intFlag('--count', { min: 1 }))
    .action(async (opts: DashboardFlags, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const intervalMs = parseInterval(opts.interval ?? '1s');
      // Loaded here, not at the top: Ink and React would cost every other command about a fifth of its start-up.
      const { runDashboard } = await import('../../dashboard/app.js');
      await runDashboard({
        url: await daemonUrlFor(loaded.config, loaded.paths, opts.url),
        intervalMs,
        apiKey: opts.apiKey ?? process.env.CS_LLM_API_KEY,
        interactive: output.interactive,
        color: output.color,
        count: opts.count,
      });
    });
}
