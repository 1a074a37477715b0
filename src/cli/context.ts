import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../core/config.js';
import { createOutput, type Output } from './output.js';

/** What every command gets: the config in force (file < env < flags) and the output channel. */
export interface CommandContext {
  loaded: LoadedConfig;
  output: Output;
  verbose: boolean;
}

export function contextFor(command: Command, flags: Record<string, unknown> = {}): CommandContext {
  const globals = command.optsWithGlobals() as { config?: string; verbose?: boolean };
  return {
    loaded: loadConfig({ flags, file: globals.config }),
    output: createOutput(),
    verbose: Boolean(globals.verbose),
  };
}

/** Parse an integer flag; commander reports the error as a usage problem naming the flag. */
export function intFlag(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n)) throw new InvalidArgumentError(`${name} must be an integer, got "${value}".`);
    return n;
  };
}
