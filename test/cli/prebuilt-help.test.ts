// `cs-llm --help` and `--version` are answered from the build's dist/cli/help.json without loading commander
// (src/cli/prebuilt-help.ts, #21): each of its texts must be what commander prints at that width. The file is
// written by npm run build (CI builds before it tests); without it the CLI asks commander, and these skip.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { helpAt, type PrebuiltHelp } from '../../src/cli/prebuilt-help.js';
import { buildProgram } from '../../src/cli/program.js';
import { ROOT } from '../helpers/cli.js';

const FILE = join(ROOT, 'dist', 'cli', 'help.json');

async function commanderHelp(args: string[], width: number): Promise<string> {
  let out = '';
  const argv = ['node', 'cs-llm', ...args];
  const output = { writeOut: (s: string) => (out += s), getOutHelpWidth: () => width, getOutHasColors: () => false };
  const program = await buildProgram(argv, { output });
  // `help` ends with commander.help, the options with commander.helpDisplayed.
  await assert.rejects(program.parseAsync(argv), { code: /^commander\.help(Displayed)?$/ });
  return out;
}

test("the build's top-level help reads as commander's at every width, for --help, -h and help", async (t) => {
  if (!existsSync(FILE)) return t.skip('no dist/cli/help.json (npm run build)');
  const help = JSON.parse(readFileSync(FILE, 'utf8')) as PrebuiltHelp;
  const widest = help.widths.at(-1)! + 40;
  for (let width = 0; width <= widest; width++) {
    assert.equal(helpAt(help, width), await commanderHelp(['--help'], width), `width ${width}`);
  }
  for (const args of [['-h'], ['help']]) assert.equal(await commanderHelp(args, 80), helpAt(help, 80), args[0]);
  assert.match(readFileSync(join(ROOT, 'dist', 'cli', 'main.js'), 'utf8'), new RegExp(`"${help.id}"`), 'main.js names this file');
});

test('the built CLI answers --help and --version without loading commander; other command lines load it', async (t) => {
  if (!existsSync(FILE)) return t.skip('no dist/cli/help.json (npm run build)');
  const help = JSON.parse(readFileSync(FILE, 'utf8')) as PrebuiltHelp;
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  // NODE_DEBUG=module names every file that node's CommonJS loader looks for; commander is in shared.cjs.
  const cli = (...args: string[]) =>
    execa(process.execPath, [join(ROOT, 'dist', 'cli', 'main.js'), ...args], {
      env: { NODE_DEBUG: 'module' },
      stripFinalNewline: false,
      reject: false,
    });
  const [helped, versioned, verbose] = await Promise.all([cli('--help'), cli('--version'), cli('--verbose', '--help')]);
  // stdout is a pipe: commander's width is 80.
  assert.equal(helped.stdout, helpAt(help, 80));
  assert.equal(versioned.stdout, `${version}\n`);
  assert.equal(verbose.stdout, helpAt(help, 80));
  for (const run of [helped, versioned, verbose]) assert.equal(run.exitCode, 0, run.stderr);
  assert.doesNotMatch(helped.stderr, /shared\.cjs/);
  assert.doesNotMatch(versioned.stderr, /shared\.cjs/);
  assert.match(verbose.stderr, /shared\.cjs/, 'commander answers a command line with more words');
});
