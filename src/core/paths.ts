/*
 * Where cs-llm keeps its files. CS_LLM_HOME relocates everything (config and state), so tests and
 * side-by-side installs never touch the real home. Without it: config under XDG config, state (database,
 * daemon log and state file) under XDG state.
 */

import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface Paths {
  home: string;
  configFile: string;
  stateDir: string;
  dbFile: string;
  daemonLog: string;
  daemonStateFile: string;
  /** The running daemon's control socket (store operations from the CLI, src/daemon/control.ts). */
  controlSocket: string;
}

export function resolvePaths(env: NodeJS.ProcessEnv = process.env): Paths {
  const explicitHome = env.CS_LLM_HOME;
  // env.HOME first: paths for another environment (the systemd unit's user) follow its HOME, not ours.
  const userHome = env.HOME || homedir();
  const home = explicitHome ?? join(env.XDG_CONFIG_HOME ?? join(userHome, '.config'), 'cs-llm');
  const stateDir = explicitHome ? join(explicitHome, 'state') : join(env.XDG_STATE_HOME ?? join(userHome, '.local', 'state'), 'cs-llm');
  return {
    home,
    configFile: join(home, 'config.json'),
    stateDir,
    dbFile: join(stateDir, 'cs-llm.db'),
    daemonLog: join(stateDir, 'daemon.log'),
    daemonStateFile: join(stateDir, 'daemon.json'),
    controlSocket: join(stateDir, 'daemon.sock'),
  };
}

/**
 * Creates `dir` (and missing parents) readable by this user only: the state directory holds conversations,
 * keys and logs. An existing directory is left as it is (`cs-llm doctor` warns when others can read it).
 */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
}
