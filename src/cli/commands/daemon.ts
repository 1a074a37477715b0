import type { Command } from 'commander';
import { contextFor, intFlag } from '../context.js';
import { createOutput } from '../output.js';

// The daemon's state file and its start/stop load node:child_process: in these actions, not at every
// command's start (#21).
const lifecycle = () => import('../../daemon/lifecycle.js');

interface RunFlags {
  host?: string;
  port?: number;
  upstream?: string;
  db?: string;
}

function configFlags(opts: RunFlags): Record<string, unknown> {
  return { daemon: { host: opts.host, port: opts.port, upstream: opts.upstream }, store: { path: opts.db } };
}

function runArgs(opts: RunFlags): string[] {
  const args: string[] = [];
  if (opts.host !== undefined) args.push('--host', opts.host);
  if (opts.port !== undefined) args.push('--port', String(opts.port));
  if (opts.upstream !== undefined) args.push('--upstream', opts.upstream);
  if (opts.db !== undefined) args.push('--db', opts.db);
  return args;
}

function withRunFlags(command: Command): Command {
  return command
    .option('--host <host>', 'address to bind (default 127.0.0.1; anything else needs API keys)')
    .option('--port <port>', 'port to listen on (default 8080; 0 picks a free one)', intFlag('--port', { min: 0, max: 65535 }))
    .option('--upstream <url>', 'the engine to proxy to (default http://127.0.0.1:8000)')
    .option('--db <path>', 'session database file (default: cs-llm.db in the state directory)');
}

async function runForeground(opts: RunFlags, command: Command): Promise<void> {
  // port 0 (a free port) is valid here but not in the config schema, which describes fixed ports.
  const { port, ...rest } = opts;
  const { loaded } = await contextFor(command, configFlags(port === 0 ? rest : opts));
  const { runDaemonProcess } = await import('../../daemon/main.js');
  await runDaemonProcess({ config: loaded.config, paths: loaded.paths, ...(port === 0 ? { port: 0 } : {}) });
}

export function register(program: Command): void {
  const daemon = program.command('daemon').description('The chat daemon: OpenAI-compatible API with session memory in front of the engine');

  withRunFlags(daemon.command('run'))
    .description('Run the daemon in the foreground (for systemd); SIGINT/SIGTERM/SIGHUP stop it gracefully')
    .action(runForeground);

  withRunFlags(daemon.command('start'))
    .description('Start the daemon in the background and wait until it answers')
    .option('--json', 'print {"pid", "url"} as JSON')
    .action(async (opts: RunFlags & { json?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command, configFlags({ ...opts, port: opts.port === 0 ? undefined : opts.port }));
      const { startDaemonDetached } = await lifecycle();
      const started = await startDaemonDetached({ paths: loaded.paths, args: runArgs(opts) });
      if (opts.json) output.json(started);
      else
        output.out(
          output.isTTY
            ? `daemon running at ${started.url} (pid ${started.pid}); log: ${loaded.paths.daemonLog}`
            : `url=${started.url} pid=${started.pid}`,
        );
    });

  daemon
    .command('stop')
    .description('Stop the background daemon (SIGTERM: in-flight requests finish, then it exits)')
    .option('--json', 'print {"stopped", "pid", "forced"} as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const { stopDaemon } = await lifecycle();
      const result = await stopDaemon(loaded.paths, { timeoutMs: loaded.config.daemon.shutdownTimeoutMs + 5000 });
      if (opts.json) output.json(result);
      else if (!result.stopped) output.out('daemon not running');
      else output.out(`daemon stopped (pid ${result.pid}${result.forced ? ', killed after the grace period' : ''})`);
    });

  daemon
    .command('status')
    .description('Is the background daemon running, where, and does it answer?')
    .option('--json', 'print {"running", "pid", "url", "startedAt", "healthy"} as JSON')
    .action(async (opts: { json?: boolean }, command: Command) => {
      const { loaded, output } = await contextFor(command);
      const { daemonStatus } = await lifecycle();
      const status = await daemonStatus(loaded.paths);
      if (opts.json) output.json(status);
      else if (!status.running)
        output.out(
          !status.stale
            ? 'daemon not running'
            : status.staleReason === 'pid-reused'
              ? `daemon not running (removed a stale state file: its pid ${status.pid} belongs to another process now)`
              : `daemon not running (removed the state file of dead pid ${status.pid})`,
        );
      else if (output.isTTY)
        output.out(
          `daemon running at ${status.url} (pid ${status.pid}, since ${status.startedAt}), ${status.healthy ? 'healthy' : 'NOT answering /healthz'}`,
        );
      else output.out(`running=true url=${status.url} pid=${status.pid} healthy=${status.healthy} started_at=${status.startedAt}`);
    });

  daemon
    .command('unit')
    .description('Print a systemd unit that runs this cs-llm daemon as an unprivileged user, sandboxed (creates its state directory)')
    .option('--user <name>', 'User= of the service (default: the user who ran sudo, else you)')
    .action(async (opts: { user?: string }, command: Command) => {
      const globals = command.optsWithGlobals() as { config?: string };
      const output = createOutput();
      const { serviceUnit } = await import('../../daemon/service-account.js');
      const { unit, notes } = serviceUnit({
        ...(opts.user ? { user: opts.user } : {}),
        ...(globals.config ? { configFile: globals.config } : {}),
      });
      for (const note of notes) output.err(`note: ${note}`);
      output.out(unit);
    });
}
