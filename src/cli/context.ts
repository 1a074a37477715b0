import { InvalidArgumentError, type Command } from 'commander';
import type { LoadedConfig } from '../core/config.js';
import { createOutput, type Output } from './output.js';

/** What every command gets: the config in force (file < env < flags) and the output channel. */
export interface CommandContext {
  loaded: LoadedConfig;
  output: Output;
  verbose: boolean;
}

/**
 * Async because the config's schema (zod) loads here, when a command runs, not when the program is built:
 * `cs-llm --help` and a command's registration load nothing they do not print.
 */
export async function contextFor(command: Command, flags: Record<string, unknown> = {}): Promise<CommandContext> {
  const globals = command.optsWithGlobals() as { config?: string; verbose?: boolean };
  const { loadConfig } = await import('../core/config.js');
  return {
    loaded: loadConfig({ flags, file: globals.config }),
    output: createOutput(),
    verbose: Boolean(globals.verbose),
  };
}

/**
 * The one parser of integer flags: a whole decimal number within the flag's range. Commander reports a bad
 * value as a usage error (exit 2) naming the flag and the range.
 */
export function intFlag(name: string, range: { min?: number; max?: number } = {}) {
  const { min, max } = range;
  const expected =
    min !== undefined && max !== undefined
      ? `a whole number from ${min} to ${max}`
      : min !== undefined
        ? `a whole number (${min} or more)`
        : max !== undefined
          ? `a whole number (${max} or less)`
          : 'a whole number';
  return (value: string): number => {
    const n = Number(value);
    if (!/^\s*-?\d+\s*$/.test(value) || !Number.isSafeInteger(n) || (min !== undefined && n < min) || (max !== undefined && n > max))
      throw new InvalidArgumentError(`${name} must be ${expected}, got "${value}".`);
    return n;
  };
}
