#!/usr/bin/env node
/**
 * Entry of the CPU engine (and of its image): `node dist/cpu/main.js --model /models/x.gguf --threads 1
 * --port 8000 [--ctx-size 512] [--parallel 1]`. Listens at once (so /health answers 503 while loading),
 * then loads the model; a load failure prints one ERROR line naming the cause and exits 1.
 */
import { cpuFlagsHelp, CpuOptionsError, parseCpuArgs } from './options.js';
import { CpuEngineListenError, startCpuEngine } from './server.js';

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseCpuArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (err instanceof CpuOptionsError) {
      process.stderr.write(`error: ${err.message}\n${cpuFlagsHelp()}\n`);
      return 2;
    }
    throw err;
  }
  if (parsed.help) {
    process.stdout.write(`usage: node dist/cpu/main.js --model PATH.gguf --threads N [flags]\n\n${cpuFlagsHelp()}\n`);
    return 0;
  }
  if (parsed.ignored.length > 0) process.stdout.write(`INFO ignoring flags with no meaning on a CPU: ${parsed.ignored.join(' ')}\n`);
  let engine;
  try {
    engine = await startCpuEngine({ ...parsed.options, waitForLoad: false });
  } catch (err) {
    if (err instanceof CpuEngineListenError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const running = engine;
  const loaded = await running.ready.then(
    () => true,
    () => false, // the ERROR line is already printed
  );
  if (!loaded) {
    await running.close();
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      process.stdout.write(`INFO Shutting down (${signal})\n`);
      void running.close().then(resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // llama.cpp's threads can keep the process alive after close.
    if (code !== 0) setTimeout(() => process.exit(code), 200).unref();
  },
  (err: unknown) => {
    process.stderr.write(`cpu engine failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
