import { Command, CommanderError, Help, type OutputConfiguration } from 'commander';
import { UsageError } from '../core/errors.js';
import { VERSION } from '../core/version.js';
import { COMMANDS } from './command-table.js';

export interface BuildOptions {
  /** build every command in full, whatever argv names (the reference the lazy build is tested against) */
  full?: boolean;
  /** where commander writes help and errors; set before the commands are made, which copy it */
  output?: OutputConfiguration;
}

/**
 * The program for this command line: the commands that argv names (anywhere: a global option's value that
 * happens to be a command's name only costs a full build) are built in full, with their options,
 * subcommands and actions; every other one is a line of the top-level help from src/cli/command-table.ts
 * (#21). commander only ever runs or shows the help of a command that argv names, so what it prints is the
 * same as from a program built in full.
 */
export async function buildProgram(argv: readonly string[], options: BuildOptions = {}): Promise<Command> {
  const program = new Command();
  if (options.output) program.configureOutput(options.output);
  program
    .name('cs-llm')
    .description('Private LLM inference on your own GPU box: detect GPUs, pick a model that fits, run the engine, serve multi-turn chat.')
    .version(VERSION, '-V, --version')
    .option('--config <file>', 'config file to read instead of $CS_LLM_HOME/config.json')
    .option('--verbose', 'show causes and stack traces of errors', false)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  const words = new Set(argv.slice(2));
  const named = (entry: (typeof COMMANDS)[number]) =>
    options.full === true || words.has(entry.name) || (entry.aliases ?? []).some((alias) => words.has(alias));
  const modules = await Promise.all(COMMANDS.map((entry) => (named(entry) ? entry.load() : null)));
  // The stubs' terms: commander derives a command's from its options and arguments, which a stub has not.
  const terms = new WeakMap<Command, string>();
  COMMANDS.forEach((entry, i) => {
    // exitOverride is inherited by commands created after it: they throw, and main.ts renders.
    const module = modules[i];
    if (module) return module.register(program);
    const stub = program.command(entry.name).description(entry.description);
    if (entry.aliases) stub.aliases(entry.aliases);
    terms.set(stub, entry.term);
  });
  const plain = new Help();
  // Set after the commands are made, so that only the top-level help reads the stubs' terms.
  program.configureHelp({ subcommandTerm: (cmd) => terms.get(cmd) ?? plain.subcommandTerm(cmd) });
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
