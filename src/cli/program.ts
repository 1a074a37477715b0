import { Command, CommanderError } from 'commander';
import { UsageError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import * as configCommand from './commands/config.js';
import * as gpuCommand from './commands/gpu.js';
import * as doctorCommand from './commands/doctor.js';
import * as modelsCommand from './commands/models.js';
import * as simCommand from './commands/sim.js';
import * as upCommand from './commands/up.js';
import * as statusCommand from './commands/status.js';
import * as logsCommand from './commands/logs.js';
import * as downCommand from './commands/down.js';
import * as daemonCommand from './commands/daemon.js';
import * as chatCommand from './commands/chat.js';
import * as sessionsCommand from './commands/sessions.js';
import * as usageCommand from './commands/usage.js';
import * as benchCommand from './commands/bench.js';
import * as keysCommand from './commands/keys.js';
import * as auditCommand from './commands/audit.js';
import * as storeCommand from './commands/store.js';
import * as bundleCommand from './commands/bundle.js';
import * as dashboardCommand from './commands/dashboard.js';

/** Every command module exports register(program). One line per command, in help order. */
const commands: Array<{ register(program: Command): void }> = [
  // commands: keep this list sorted by the order a newcomer meets them
  configCommand,
  doctorCommand,
  gpuCommand,
  modelsCommand,
  upCommand,
  statusCommand,
  dashboardCommand,
  logsCommand,
  downCommand,
  chatCommand,
  daemonCommand,
  sessionsCommand,
  usageCommand,
  benchCommand,
  keysCommand,
  auditCommand,
  storeCommand,
  bundleCommand,
  simCommand,
];

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('cs-llm')
    .description('Private LLM inference on your own GPU box: detect GPUs, pick a model that fits, run the engine, serve multi-turn chat.')
    .version(VERSION, '-V, --version')
    .option('--config <file>', 'config file to read instead of $CS_LLM_HOME/config.json')
    .option('--verbose', 'show causes and stack traces of errors', false)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  // exitOverride is inherited by commands created after it: they throw, and main.ts renders.
  for (const command of commands) command.register(program);
  return program;
}

/** Commander reports usage problems as CommanderError; turn them into our UsageError (help/version are not errors). */
export function translateCommanderError(err: unknown): unknown {
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return null;
    if (err.exitCode === 0) return null;
    // commander already printed its message to stderr
    return new UsageError(err.message.replace(/^error: /, ''), { next: 'Run cs-llm --help, or cs-llm <command> --help.' });
  }
  return err;
}
