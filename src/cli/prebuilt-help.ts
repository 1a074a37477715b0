import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { endOnClosedPipe } from './closed-pipe.js';

/**
 * `cs-llm --help` (`-h`, `help`) and `--version` answered without commander or the command table (#21):
 * loading and running them was about 15 ms of the 20-25 that --help spent over node's own start. The build
 * (scripts/bundle-cli.mjs) renders the top-level help with commander itself at every width where its
 * wrapping changes, one file per width in dist/cli/help-<id>/, and defines __CS_LLM_HELP__ in main.js.
 * test/cli/prebuilt-help.test.ts compares those texts with commander's at every width.
 */
export interface PrebuiltHelp {
  /** names the folder of this build's texts */
  id: string;
  /** ascending, from 0: help-<id>/<w>.txt is the help for a width from w up to the next one */
  widths: number[];
}

declare const __CS_LLM_HELP__: PrebuiltHelp | undefined;

const HELP = new Set(['--help', '-h', 'help']);
const VERSION = new Set(['--version', '-V']);

/** The rendered width whose text commander prints at this width. */
export function renderedWidth(help: PrebuiltHelp, width: number): number {
  let i = 0;
  while (i + 1 < help.widths.length && help.widths[i + 1]! <= width) i++;
  return help.widths[i]!;
}

/** Writes the answer and says true when the command line is one of those and the build's text is there. */
export function answerFromBuild(argv: readonly string[]): boolean {
  // Defined only in the esbuild bundle, which is CommonJS: there __dirname is main.js's folder.
  if (typeof __CS_LLM_HELP__ === 'undefined' || argv.length !== 3) return false;
  const word = argv[2]!;
  try {
    endOnClosedPipe(process.stdout);
    if (VERSION.has(word)) {
      const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
      process.stdout.write(`${version}\n`);
      return true;
    }
    if (!HELP.has(word)) return false;
    // commander's own reading of the width: a terminal's columns, else its default of 80.
    const width = (process.stdout.isTTY ? process.stdout.columns : undefined) ?? 80;
    const file = join(__dirname, `help-${__CS_LLM_HELP__.id}`, `${renderedWidth(__CS_LLM_HELP__, width)}.txt`);
    process.stdout.write(readFileSync(file, 'utf8'));
    return true;
  } catch {
    // No such file (a build that went wrong): commander answers.
    return false;
  }
}
