import { renderError, exitCodeOf, isCsLlmError } from '../core/errors.js';
import { terminalText } from '../core/terminal-text.js';
import { endOnClosedPipe } from './closed-pipe.js';
import { buildProgram, translateCommanderError } from './program.js';

// The one place that turns errors into what a person sees and an exit code.
async function main(argv: string[]): Promise<number> {
  const verbose = argv.includes('--verbose') || /(^|,)cs-llm:/.test(process.env.DEBUG ?? '');
  try {
    await (await buildProgram(argv)).parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (raw) {
    const err = translateCommanderError(raw);
    if (err === null) return 0;
    // commander prints its own usage message; print only the next step for those.
    if (isCsLlmError(err) && raw !== err) {
      if (err.next) process.stderr.write(terminalText(`next: ${err.next}\n`));
    } else {
      // Error texts can quote an upstream or an engine: no control characters reach the terminal.
      process.stderr.write(terminalText(`${renderError(err, { verbose })}\n`));
    }
    return exitCodeOf(err);
  }
}

/** Runs the command line and sets the exit code; src/cli/main.ts loads this unless the build's help answers. */
export async function run(argv: string[]): Promise<void> {
  endOnClosedPipe(process.stdout);
  endOnClosedPipe(process.stderr);
  try {
    process.exitCode = await main(argv);
  } catch (err) {
    process.stderr.write(terminalText(`${renderError(err, { verbose: true })}\n`));
    process.exitCode = 1;
  }
}
