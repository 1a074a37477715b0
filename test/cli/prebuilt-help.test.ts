// `cs-llm --help` and `--version` are answered from the build's texts in dist/cli/help-<id>/ without loading
// commander (src/cli/prebuilt-help.ts, #21): each must be what commander prints at its widths. They are
// written by npm run build (CI builds before it tests); without them the CLI asks commander, and these skip.

import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { execa } from 'execa';
import { renderedWidth, type PrebuiltHelp } from '../../src/cli/prebuilt-help.js';
import { buildProgram } from '../../src/cli/program.js';
import { ROOT } from '../helpers/cli.js';

const DIST = join(ROOT, 'dist', 'cli');

/** This build's texts, with the widths read back from their file names; undefined without a build. */
function built(): { help: PrebuiltHelp; text(width: number): string } | undefined {
  const folders = existsSync(DIST) ? readdirSync(DIST).filter((name) => /^help-[0-9a-f]+$/.test(name)) : [];
  if (folders.length === 0) return undefined;
  assert.equal(folders.length, 1, `one folder of texts: ${folders.join(', ')}`);
  const folder = join(DIST, folders[0]!);
  const widths = readdirSync(folder)
    .map((name) => Number(name.replace(/\.txt$/, '')))
    .sort((a, b) => a - b);
  const help = { id: folders[0]!.slice('help-'.length), widths };
  return { help, text: (width) => readFileSync(join(folder, `${renderedWidth(help, width)}.txt`), 'utf8') };
}

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
  const build = built();
  if (!build) return t.skip('no dist/cli/help-<id> (npm run build)');
  assert.equal(build.help.widths[0], 0);
  for (let width = 0; width <= build.help.widths.at(-1)! + 40; width++) {
    assert.equal(build.text(width), await commanderHelp(['--help'], width), `width ${width}`);
  }
  for (const args of [['-h'], ['help']]) assert.equal(await commanderHelp(args, 80), build.text(80), args[0]);
  // main.js holds this folder's id and these widths (as esbuild prints the object it was given).
  const defined = /\bid: "([0-9a-f]+)", widths: \[([\d, ]+)\]/.exec(readFileSync(join(DIST, 'main.js'), 'utf8'));
  assert.deepEqual([defined?.[1], defined?.[2]?.split(', ').map(Number)], [build.help.id, build.help.widths]);
});

test('the built CLI answers --help and --version without loading commander; other command lines load it', async (t) => {
  const build = built();
  if (!build) return t.skip('no dist/cli/help-<id> (npm run build)');
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
  // NODE_DEBUG=module names every file that node's CommonJS loader looks for; commander is in shared.cjs.
  const cli = (...args: string[]) =>
    execa(process.execPath, [join(DIST, 'main.js'), ...args], {
      env: { NODE_DEBUG: 'module' },
      stripFinalNewline: false,
      reject: false,
    });
  const [helped, versioned, verbose] = await Promise.all([cli('--help'), cli('--version'), cli('--verbose', '--help')]);
  // stdout is a pipe: commander's width is 80.
  assert.equal(helped.stdout, build.text(80));
  assert.equal(versioned.stdout, `${version}\n`);
  assert.equal(verbose.stdout, build.text(80));
  for (const run of [helped, versioned, verbose]) assert.equal(run.exitCode, 0, run.stderr);
  assert.doesNotMatch(helped.stderr, /shared\.cjs/);
  assert.doesNotMatch(versioned.stderr, /shared\.cjs/);
  assert.match(verbose.stderr, /shared\.cjs/, 'commander answers a command line with more words');
});
