/*
 * Who the systemd service runs as, and where that user's cs-llm state really is. The unit never defaults to
 * root: its User= is --user, else the user who ran sudo, else the user running the command. The paths are
 * the ones the service will compute (systemd gives it that user's HOME and only the Environment= lines), and
 * the state directory must exist before the sandbox starts (ReadWritePaths= of a missing path fails the
 * start), so it is created here, 0700 and owned by that user.
 */

import { execFileSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { userInfo } from 'node:os';
import { dirname, resolve } from 'node:path';
import { loadConfig } from '../core/config.js';
import { UsageError } from '../core/errors.js';
import { resolvePaths, type Paths } from '../core/paths.js';
import { PACKAGE_ROOT } from '../core/version.js';
import { isPostgresUrl, storeFile } from '../store/store.js';
import { cliCommand } from './lifecycle.js';
import { isWildcardHost } from './security.js';
import { systemdUnit } from './unit.js';

export interface Account {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

function parsePasswd(line: string): Account | null {
  const [name, , uid, gid, , home] = line.trim().split(':');
  if (!name || uid === undefined || gid === undefined || !home) return null;
  return { name, uid: Number(uid), gid: Number(gid), home };
}

/** The passwd entry of `name` (getent, so LDAP and other NSS users count; else /etc/passwd). */
export function lookupAccount(name: string): Account | null {
  try {
    const line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
    return parsePasswd(line.split('\n')[0] ?? '');
  } catch (err) {
    // getent exits 2 for an unknown name; anything else (no getent): read the file.
    if ((err as { status?: number }).status === 2) return null;
  }
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const account = parsePasswd(line);
      if (account?.name === name) return account;
    }
  } catch {
    // no passwd file
  }
  return null;
}

/** The user who asked: the one behind sudo when running as root through it, else the process's own user. */
export function invokingUser(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0 && env.SUDO_USER && env.SUDO_USER !== 'root') return env.SUDO_USER;
  return userInfo().username;
}

/** The variables the service gets that decide its paths (systemd sets HOME from User=). */
function serviceEnv(account: Account, env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  if (env.CS_LLM_HOME) out.CS_LLM_HOME = resolve(env.CS_LLM_HOME);
  // The caller's own XDG directories only when the service is the caller: another user's are not these.
  else if (account.name === userInfo().username) {
    for (const name of ['XDG_CONFIG_HOME', 'XDG_STATE_HOME'] as const) if (env[name]) out[name] = resolve(env[name]);
  }
  return out;
}

/** The paths the service will use: resolvePaths as the service's environment gives them. */
export function unitPaths(account: Account, environment: Record<string, string>): Paths {
  return resolvePaths({ HOME: account.home, ...environment });
}

/** Creates `dir` and its missing parents, 0700, owned by the account when running as root. */
function ensureDir(dir: string, account: Account, notes: string[]): void {
  const missing: string[] = [];
  for (let d = resolve(dir); !existsSync(d); d = dirname(d)) missing.unshift(d);
  for (const d of missing) {
    mkdirSync(d, { mode: 0o700 });
    if (process.getuid?.() === 0 && account.uid !== 0) chownSync(d, account.uid, account.gid);
  }
  if (missing.length > 0)
    notes.push(`created ${dir} (0700${process.getuid?.() === 0 ? `, owner ${account.name}` : ''}): the sandbox needs it at start`);
  const owner = statSync(dir).uid;
  if (owner !== account.uid) notes.push(`${dir} belongs to uid ${owner}, not ${account.name}: chown -R ${account.name} ${dir}`);
}

export interface ServiceUnitOptions {
  /** --user; default: invokingUser(). */
  user?: string;
  /** --config given to this command: the service reads the same file. */
  configFile?: string;
  env?: NodeJS.ProcessEnv;
}

/** The unit text for this install, and notes for the operator (stderr). */
export function serviceUnit(options: ServiceUnitOptions = {}): { unit: string; notes: string[] } {
  const env = options.env ?? process.env;
  const name = options.user ?? invokingUser(env);
  const account = lookupAccount(name);
  if (!account) {
    throw new UsageError(`no user named ${name} on this machine`, {
      next: 'Pass --user with an existing user (the one that owns the state directory), or create one: useradd --system --create-home cs-llm.',
    });
  }
  const notes: string[] = [];
  if (account.uid === 0) notes.push('this unit runs the daemon as root: pass --user NAME to run it as an unprivileged user');
  const environment = serviceEnv(account, env);
  const paths = unitPaths(account, environment);
  const configFile = options.configFile === undefined ? undefined : resolve(options.configFile);
  // The service's config as it will read it (its variables: the CS_LLM_* of this shell do not reach it).
  const passed = Object.keys(env).filter((k) => k.startsWith('CS_LLM_') && k !== 'CS_LLM_HOME');
  if (passed.length > 0)
    notes.push(
      `${passed.join(', ')} ${passed.length === 1 ? 'is' : 'are'} not passed to the service: put settings in ${configFile ?? paths.configFile}`,
    );
  const { config } = loadConfig({ env: { ...env, HOME: account.home, ...environment }, ...(configFile ? { file: configFile } : {}) });
  const store = storeFile(config, paths);
  // A PostgreSQL store (a URL) has no directory here: the state directory is the only one the service writes.
  const dbDir = isPostgresUrl(store) ? paths.stateDir : dirname(resolve(store));
  for (const dir of [paths.stateDir, dbDir]) ensureDir(dir, account, notes);
  const keyFile = config.store.encryption.keyFile;
  const { command, args } = cliCommand();
  const unit = systemdUnit({
    command: [command, ...args],
    globalArgs: configFile ? ['--config', configFile] : [],
    environment,
    user: account.name,
    writablePaths: [realpathSync(paths.stateDir), realpathSync(dbDir)],
    readPaths: [PACKAGE_ROOT, process.execPath, dirname(configFile ?? paths.configFile), ...(keyFile ? [resolve(keyFile)] : [])].map(real),
    wildcardBind: isWildcardHost(config.daemon.host),
    stopTimeoutSeconds: Math.ceil(config.daemon.shutdownTimeoutMs / 1000) + 10,
  });
  return { unit, notes };
}

/** The real path where it exists (symlinks resolved), else the path as given. */
function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
