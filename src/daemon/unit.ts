/*
 * A systemd unit for `cs-llm daemon run`: systemd owns restarts and the journal; SIGTERM gets the daemon's
 * graceful shutdown. The service runs as a named user in a sandbox that lets it write only its state
 * directory (docs/daemon.md, "The systemd unit"). Pure: the caller passes the user and the paths.
 */

import { isAbsolute } from 'node:path';

export interface UnitOptions {
  /** The program and arguments that run cs-llm, e.g. ['/usr/bin/node', '/opt/cs-llm/dist/cli/main.js']. */
  command: string[];
  /** Arguments before `daemon run`, e.g. ['--config', '/etc/cs-llm.json']. */
  globalArgs?: string[];
  /** Environment= lines, e.g. {CS_LLM_HOME: '/srv/cs-llm'} (never secrets: unit files are world-readable). */
  environment?: Record<string, string>;
  /** User= of the service. */
  user: string;
  /** Directories the service writes (its state directory, the database's directory); absolute, real paths. */
  writablePaths: string[];
  /** What it reads besides the system: the cs-llm install, node, the config; decides ProtectHome. */
  readPaths: string[];
  /** The daemon binds every interface: it lists the machine's addresses (getifaddrs(3) uses a netlink socket). */
  wildcardBind?: boolean;
  /** Seconds systemd waits after SIGTERM before SIGKILL; longer than daemon.shutdownTimeoutMs. */
  stopTimeoutSeconds?: number;
}

const HOMES = ['/home', '/root', '/run/user'];
const TMPS = ['/tmp', '/var/tmp'];

function under(path: string, roots: string[]): boolean {
  return roots.some((root) => path === root || path.startsWith(`${root}/`));
}

function quote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `"${arg.replace(/(["\\])/g, '\\$1')}"`;
}

export function systemdUnit(options: UnitOptions): string {
  for (const path of [...options.writablePaths, ...options.readPaths]) {
    if (!isAbsolute(path)) throw new Error(`systemdUnit: ${path} is not an absolute path`);
  }
  const writable = [...new Set(options.writablePaths)];
  // ProtectHome=yes hides the homes whole, and ReadWritePaths cannot reopen a path inside them; read-only can.
  const needsHome = [...writable, ...options.readPaths].some((p) => under(p, HOMES));
  // A private /tmp would hide a state directory that lives under the real one.
  const needsTmp = [...writable, ...options.readPaths].some((p) => under(p, TMPS));
  const env = Object.entries(options.environment ?? {});
  const lines = [
    '[Unit]',
    'Description=cs-llm chat daemon (OpenAI-compatible, session memory)',
    'After=network-online.target docker.service',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${[...options.command, ...(options.globalArgs ?? []), 'daemon', 'run'].map(quote).join(' ')}`,
    ...env.map(([name, value]) => `Environment=${quote(`${name}=${value}`)}`),
    `User=${options.user}`,
    'Restart=on-failure',
    'RestartSec=2',
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${options.stopTimeoutSeconds ?? 30}`,
    '',
    '# Sandbox: the daemon writes only its state directory and needs no privilege or device.',
    'UMask=0077',
    'NoNewPrivileges=yes',
    'CapabilityBoundingSet=',
    'AmbientCapabilities=',
    'ProtectSystem=strict',
    `ReadWritePaths=${writable.map(quote).join(' ')}`,
    ...(needsHome ? ['# read-only, not yes: what the daemon uses lives under a home directory.'] : []),
    `ProtectHome=${needsHome ? 'read-only' : 'yes'}`,
    ...(needsTmp ? ['# off: the state directory (or the install) is under /tmp, which a private /tmp would hide.'] : []),
    `PrivateTmp=${needsTmp ? 'no' : 'yes'}`,
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    `RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6${options.wildcardBind ? ' AF_NETLINK' : ''}`,
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ];
  return lines.join('\n');
}
