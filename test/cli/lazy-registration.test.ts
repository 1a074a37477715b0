// `cs-llm` builds in full only the commands its command line names, the others from src/cli/command-table.ts
// (#21): whatever a person types, commander must print and exit exactly as with every command built. Both
// programs are built here in-process (no CLI spawns) and given the same command lines.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommanderError, type Command } from 'commander';
import { COMMANDS } from '../../src/cli/command-table.js';
import { buildProgram, translateCommanderError } from '../../src/cli/program.js';

interface Outcome {
  out: string;
  err: string;
  code: string;
  exitCode: number;
  usage: unknown;
}

class ReachedAction extends Error {}

async function run(args: string[], full: boolean): Promise<Outcome> {
  let out = '';
  let err = '';
  const argv = ['node', 'cs-llm', ...args];
  const program = await buildProgram(argv, {
    full,
    output: {
      writeOut: (s) => (out += s),
      writeErr: (s) => (err += s),
      getOutHelpWidth: () => 100,
      getErrHelpWidth: () => 100,
      getOutHasColors: () => false,
      getErrHasColors: () => false,
    },
  });
  // An action (`sim --nosuch-option`: sim passes unknown options to the simulator) is not run: which one
  // commander reached is the outcome.
  program.hook('preAction', (_program, action) => {
    throw new ReachedAction(action.name());
  });
  try {
    await program.parseAsync(argv);
    assert.fail(`cs-llm ${args.join(' ')} returned without an error`);
  } catch (raw) {
    if (raw instanceof ReachedAction) return { out, err, code: `action ${raw.message}`, exitCode: 0, usage: null };
    if (!(raw instanceof CommanderError)) throw raw;
    const usage = translateCommanderError(raw);
    return { out, err, code: raw.code, exitCode: raw.exitCode, usage: usage instanceof Error ? usage.message : usage };
  }
}

/** Every command line that shows help or version or fails on usage, for every command and subcommand. */
async function commandLines(): Promise<string[][]> {
  const lines: string[][] = [[], ['--help'], ['-h'], ['--version'], ['-V'], ['help'], ['nosuch'], ['stauts'], ['--nosuch']];
  lines.push(['--config', 'x.json', '--help'], ['--verbose', 'help', 'nosuch']);
  const full = await buildProgram(['node', 'cs-llm'], { full: true });
  const walk = (cmd: Command, path: string[]) => {
    lines.push([...path, '--help'], [...path, '--nosuch-option'], ['help', ...path]);
    for (const sub of cmd.commands) walk(sub, [...path, sub.name()]);
  };
  for (const cmd of full.commands) walk(cmd, [cmd.name()]);
  return lines;
}

test('the command table lists every command the full program has, in its order', async () => {
  const full = await buildProgram(['node', 'cs-llm'], { full: true });
  assert.deepEqual(
    COMMANDS.map((entry) => [entry.name, entry.aliases ?? []]),
    full.commands.map((cmd) => [cmd.name(), cmd.aliases()]),
  );
});

test('help, version and usage errors read the same from the lazy program as from the full one', async () => {
  const lines = await commandLines();
  assert.ok(lines.length > 60, `${lines.length} command lines`);
  for (const args of lines) {
    const lazy = await run(args, false);
    const full = await run(args, true);
    assert.deepEqual(lazy, full, `cs-llm ${args.join(' ')}`);
    const printed = lazy.out !== '' || lazy.err !== '' || lazy.code.startsWith('action ');
    assert.ok(printed, `cs-llm ${args.join(' ')} printed something`);
  }
  // The top-level help lists every command, which the lazy program shows from the table alone.
  const help = await run(['--help'], false);
  for (const entry of COMMANDS) assert.ok(help.out.includes(`  ${entry.term} `), entry.term);
});
