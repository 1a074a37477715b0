import type { Command } from 'commander';
import { EnvironmentError, UsageError } from '../../core/errors.js';
import { createOutput } from '../output.js';
// The flags' parser and help are light; the simulator's server loads when it runs.
import { parseSimulatorArgs, SimOptionsError, simulatorFlagsHelp } from '../../sim/options.js';

export function register(program: Command): void {
  program
    .command('sim')
    .description('Run the vLLM-compatible engine simulator in the foreground until Ctrl-C (tests, demos, benchmarks, drills)')
    .argument('[flags...]', 'vLLM-style flags and simulator knobs, listed below')
    // The simulator takes vLLM's command line as it is, so its flags are parsed by the simulator's own parser.
    .allowUnknownOption()
    .allowExcessArguments()
    .addHelpText(
      'after',
      `\n${simulatorFlagsHelp()}\n\nExample: cs-llm sim --port 8000 --served-model-name qwen --tokens-per-second 30 --fail-503-rate 0.1`,
    )
    .action(async (_flags: string[], _opts: unknown, command: Command) => {
      const output = createOutput();
      let parsed;
      try {
        parsed = parseSimulatorArgs(command.args, process.env);
      } catch (err) {
        if (err instanceof SimOptionsError) throw new UsageError(err.message, { next: 'Run cs-llm sim --help for the flags.' });
        throw err;
      }

      const { SimulatedCrash, SimulatorListenError, startSimulator } = await import('../../sim/server.js');
      let sim;
      try {
        sim = await startSimulator({ ...parsed.options, log: (line) => output.out(line) }, parsed.ignored);
      } catch (err) {
        if (err instanceof SimulatedCrash) {
          // A drill: behave like a vLLM that dies at start-up (its lines on stderr, exit 1).
          output.err(err.lines.join('\n'));
          process.exitCode = 1;
          return;
        }
        if (err instanceof SimOptionsError) throw new UsageError(err.message, { next: 'Run cs-llm sim --help for the flags.' });
        if (err instanceof SimulatorListenError) {
          throw new EnvironmentError(err.message, { next: 'Pick another port with --port (0 = any free port), or stop what is using it.' });
        }
        throw err;
      }
      output.out(`listening on ${sim.url}`);

      const signal = await new Promise<string>((resolve) => {
        for (const name of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(name, () => resolve(name));
      });
      await sim.close();
      output.out(`simulator stopped (${signal})`);
    });
}
