/*
 * The daemon as a process (`cs-llm daemon run`, which systemd and `daemon start` run): its lifecycle log
 * lines, the stop signals, the force-exit backstop, the state file other commands find it by, and the
 * process-wide error handlers. The HTTP server itself is startDaemon (server.ts); the CLI command only parses
 * flags and calls runDaemonProcess.
 */

import { upstreamKindOf } from '../compliance/redact.js';
import type { Config } from '../core/config.js';
import { redactSecrets, type Logger } from '../core/log.js';
import type { Paths } from '../core/paths.js';
import { readEngineKey } from '../engine/engine-key.js';
import { ownDaemonState, removeDaemonState, writeDaemonState } from './lifecycle.js';
import { startDaemon } from './server.js';

const STOP_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface DaemonProcessOptions {
  config: Config;
  paths: Paths;
  /** Overrides config.daemon.port; 0 picks a free port (the config describes fixed ports only). */
  port?: number;
  /** Where lifecycle lines go; default stderr (the journal under systemd, daemon.log when detached). */
  write?: (line: string) => void;
}

/** Lifecycle lines: one per event, timestamped, secrets redacted. */
export function lifecycleLogger(write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const log = ((message: string, ...fields: unknown[]) => {
    const text = [message, ...fields.map((f) => (f instanceof Error ? f.message : typeof f === 'string' ? f : JSON.stringify(f)))].join(
      ' ',
    );
    write(`${new Date().toISOString()} cs-llm daemon: ${redactSecrets(text)}\n`);
  }) as Logger;
  log.enabled = true;
  return log;
}

/**
 * The engine `cs-llm up` starts wants its own key on /v1/* (docs/engine.md, "The engine's API key"). A daemon whose
 * config names no upstream key, in front of that engine (one loopback upstream on engine.port), reads the key from
 * the state directory, so that `daemon start`, a restart and a systemd unit (whose file must hold no secret) reach
 * the engine as the daemon `up` starts does. No other upstream ever gets it.
 */
export function withEngineKey(config: Config, stateDir: string): Config {
  const d = config.daemon;
  if (d.upstreamApiKey || d.upstreams.length > 0 || upstreamKindOf(d.upstream) !== 'local') return config;
  const url = new URL(d.upstream);
  if (Number(url.port || (url.protocol === 'https:' ? 443 : 80)) !== config.engine.port) return config;
  const key = readEngineKey(stateDir);
  return key ? { ...config, daemon: { ...d, upstreamApiKey: key } } : config;
}

/** The upstream URL, or the configured upstreams' URLs joined by commas (what `up` compares to reuse a daemon). */
function upstreamsOf(config: Config): string {
  const list = config.daemon.upstreams;
  return list.length > 0 ? list.map((u) => u.url).join(',') : config.daemon.upstream;
}

/**
 * Listens for SIGINT, SIGTERM and SIGHUP for the whole run (installed before the daemon starts, so a signal
 * during start-up stops it once it is up). `first` resolves with the first; each later one calls `again`.
 */
function stopSignals(again: (signal: string) => void): { first: Promise<string>; remove(): void } {
  let seen: string | undefined;
  let resolveFirst!: (signal: string) => void;
  const first = new Promise<string>((resolve) => (resolveFirst = resolve));
  const handler = (signal: NodeJS.Signals) => {
    if (seen === undefined) {
      seen = signal;
      resolveFirst(signal);
    } else again(signal);
  };
  for (const signal of STOP_SIGNALS) process.on(signal, handler);
  return { first, remove: () => STOP_SIGNALS.forEach((signal) => process.off(signal, handler)) };
}

/**
 * Runs the daemon until a stop signal: start, publish the state file, serve; on the first signal drain
 * (in-flight requests finish, up to daemon.shutdownTimeoutMs), close the store, remove the state file. A second
 * signal cuts the drain; a drain that hangs past its deadline ends the process (exit 1). Start-up errors
 * (a damaged database, a refused bind) are thrown for the caller to render.
 */
export async function runDaemonProcess(options: DaemonProcessOptions): Promise<void> {
  const { paths } = options;
  const config = withEngineKey(options.config, paths.stateDir);
  const log = lifecycleLogger(options.write);
  let daemon: Awaited<ReturnType<typeof startDaemon>> | undefined;
  const signals = stopSignals((signal) => {
    log(`${signal} while stopping: not waiting for requests in flight any longer`);
    void daemon?.close(signal, { drainMs: 0 });
  });
  const onException = (err: unknown) => log('uncaught exception (kept running)', err as Error);
  const onRejection = (err: unknown) => log('unhandled rejection (kept running)', err instanceof Error ? err : String(err));
  try {
    daemon = await startDaemon({
      config,
      paths,
      log,
      controlSocket: paths.controlSocket,
      ...(options.port === undefined ? {} : { port: options.port }),
    });
    writeDaemonState(
      paths,
      ownDaemonState({ url: daemon.url, startedAt: new Date().toISOString(), upstream: upstreamsOf(config), db: daemon.store.file }),
    );
    log(`listening on ${daemon.url} (upstream ${upstreamsOf(config)}, database ${daemon.store.file}, pid ${process.pid})`);

    // The process belongs to the daemon now: a stray error is logged, never a crash of every session.
    process.on('uncaughtException', onException);
    process.on('unhandledRejection', onRejection);

    const reason = await signals.first;
    // The backstop: a drain that hangs past its deadline must not keep the process alive.
    const force = setTimeout(() => {
      log(`shutdown did not finish in time (${reason}); exiting`);
      process.exit(1);
    }, config.daemon.shutdownTimeoutMs + 5000);
    force.unref();
    try {
      await daemon.close(reason);
    } catch (err) {
      log('shutdown failed', err as Error);
    }
    removeDaemonState(paths, process.pid);
    log(`stopped (${reason})`);
  } finally {
    signals.remove();
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
  }
}
