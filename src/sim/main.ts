#!/usr/bin/env node
/*
 * Standalone entry of the simulator image: `node dist/sim/main.js [vLLM flags]`. Node built-ins only,
 * since the image holds just the node binary and dist/sim/*.js.
 */

import { stopSignals } from '../openai-server/stop-signals.js';
import { parseSimulatorArgs, SimOptionsError, simulatorFlagsHelp } from './options.js';
import { SimulatedCrash, SimulatorListenError, startSimulator } from './server.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseSimulatorArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof SimOptionsError) {
      process.stderr.write(`error: ${err.message}\n${simulatorFlagsHelp()}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(`usage: node dist/sim/main.js [--model ID] [--port N] [flags]\n\n${simulatorFlagsHelp()}\n`);
    return 0;
  }

  let sim;
  try {
    sim = await startSimulator({ ...parsed.options, log: (line) => process.stdout.write(`${line}\n`) }, parsed.ignored);
  } catch (err) {
    if (err instanceof SimulatedCrash) {
      process.stderr.write(`${err.lines.join('\n')}\n`);
      return 1;
    }
    if (err instanceof SimOptionsError || err instanceof SimulatorListenError) {
      process.stderr.write(`error: ${err.message}\n`);
      return err instanceof SimOptionsError ? 2 : 1;
    }
    throw err;
  }

  // A second signal while closing: do not wait for close() (it cuts every connection, so it is quick anyway).
  const signal = await stopSignals(() => process.exit(0));
  process.stdout.write(`INFO:     Shutting down (${signal})\n`);
  await sim.close();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`simulator failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
