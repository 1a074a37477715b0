import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * `cs-llm --help` (`-h`, `help`) and `--version` answered without commander or the command table (#21):
 * loading and running them was about 15 ms of the 20-25 that --help spent over node's own start. The build
 * (scripts/bundle-cli.mjs) renders the top-level help with commander itself, at every width where its
 * wrapping changes, into dist/cli/help.json, and defines __CS_LLM_HELP_ID__ in main.js to match that file.
 * test/cli/lazy-registration.test.ts compares these texts with commander's at every width.
 */
export interface PrebuiltHelp {
  id: string;
  /** ascending, from 0: texts[i] is the help for a width from widths[i] up to the next one */
  widths: number[];
  texts: string[];
}

declare const __CS_LLM_HELP_ID__: string | undefined;

const HELP = new Set(['--help', '-h', 'help']);
const VERSION = new Set(['--version', '-V']);

/** The help commander prints at this width (its Help's: the terminal's columns, else 80). */
export function helpAt(help: PrebuiltHelp, width: number): string {
  let i = 0;
  while (i + 1 < help.widths.length && help.widths[i + 1]! <= width) i++;
  return help.texts[i]!;
}

/** Writes the answer and says true when the command line is one of those and the build's file is there. */
export function answerFromBuild(argv: readonly string[]): boolean {
  // Defined only in the esbuild bundle, which is CommonJS: there __dirname is main.js's folder.
  if (typeof __CS_LLM_HELP_ID__ !== 'string' || argv.length !== 3) return false;
  const word = argv[2]!;
  if (!HELP.has(word) && !VERSION.has(word)) return false;
  try {
    if (VERSION.has(word)) {
      const { version } = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string };
      process.stdout.write(`${version}\n`);
      return true;
    }
    const help = JSON.parse(readFileSync(join(__dirname, 'help.json'), 'utf8')) as PrebuiltHelp;
    if (help.id !== __CS_LLM_HELP_ID__) return false;
    // commander's own reading of the width: a terminal's columns, else its default of 80.
    const width = (process.stdout.isTTY ? process.stdout.columns : undefined) ?? 80;
    process.stdout.write(helpAt(help, width));
    return true;
  } catch {
    // No file, or not one of ours: commander answers.
    return false;
  }
}
