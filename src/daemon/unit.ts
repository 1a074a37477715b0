/*
 * A systemd unit for `cs-llm daemon run`: systemd owns restarts and the journal; SIGTERM gets the daemon's
 * graceful shutdown. Pure: the caller passes the paths.
 */

export interface UnitOptions {
  /** The program and arguments that run cs-llm, e.g. ['/usr/bin/node', '/opt/cs-llm/dist/cli/main.js']. */
  command: string[];
  /** CS_LLM_HOME for the service, when the operator uses one (else the service uses the XDG defaults). */
  home?: string;
  /** Directories the service writes (state directory, database directory); the rest of the system is read-only. */
  writablePaths: string[];
  user?: string;
  /** Seconds systemd waits after SIGTERM before SIGKILL; longer than daemon.shutdownTimeoutMs. */
  stopTimeoutSeconds?: number;
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`;
}

export function systemdUnit(options: UnitOptions): string {
  const lines = [
    '[Unit]',
    'Description=cs-llm chat daemon (OpenAI-compatible, session memory)',
    'After=network-online.target docker.service',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${[...options.command, 'daemon', 'run'].map(quote).join(' ')}`,
    ...(options.home ? [`Environment=CS_LLM_HOME=${quote(options.home)}`] : []),
    ...(options.user ? [`User=${options.user}`] : []),
    'Restart=on-failure',
    'RestartSec=2',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${options.stopTimeoutSeconds ?? 30}`,
    'NoNewPrivileges=true',
    'PrivateTmp=true',
    'ProtectSystem=strict',
    `ReadWritePaths=${[...new Set(options.writablePaths)].map(quote).join(' ')}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ];
  return lines.join('\n');
}
