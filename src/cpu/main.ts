#!/usr/bin/env node
/*
 * Entry of the CPU engine (and of its image): `node dist/cpu/main.js --model /models/x.gguf --threads 1
 * --port 8000 [--ctx-size 512] [--parallel 1]`. Listens at once (so /health answers 503 while loading),
 * then loads the model; a load failure prints one ERROR line naming the cause and exits 1.
 *
 * SIGTERM/SIGINT stop it gracefully: no new requests, the ones in flight finish (up to --drain-timeout-ms,
 * then they get a 503), the model is unloaded, exit 0. Our handlers are installed before node-llama-cpp is
 * imported and stay installed: importing it loads proper-lockfile, whose signal-exit (v3) hook listens for
 * SIGTERM/SIGINT/SIGHUP and, when it is the only listener, re-raises the signal so the process dies (143).
 * node-llama-cpp has no option to skip that import; while another listener exists, the hook lets it be.
 */

import { stopSignals } from '../openai-server/stop-signals.js';
import { cpuFlagsHelp, CpuOptionsError, DEFAULT_DRAIN_TIMEOUT_MS, parseCpuArgs } from './options.js';
import { CpuEngineListenError, startCpuEngine, type RunningCpuEngine } from './server.js';

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
  const log = (line: string) => process.stdout.write(`${line}\n`);
  let engine: RunningCpuEngine | undefined;
  // Before startCpuEngine: it imports node-llama-cpp (and its signal hook) while loading. A second signal,
  // while the drain runs, ends the drain at once (the requests still in flight get a 503); the process still
  // exits 0 after unloading the model.
  const stopped = stopSignals((signal) => {
    log(`INFO ${signal} while stopping: not waiting for requests in flight any longer`);
    void engine?.close(0);
  });
  if (parsed.ignored.length > 0) log(`INFO ignoring flags with no meaning on a CPU: ${parsed.ignored.join(' ')}`);
  try {
    engine = await startCpuEngine({ ...parsed.options, log, waitForLoad: false });
  } catch (err) {
    if (err instanceof CpuEngineListenError) {
      process.stderr.write(`error: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const running = engine;
  const outcome = await Promise.race([
    running.ready.then(
      () => 'ready' as const,
      () => 'failed' as const, // the ERROR line is already printed (or the INFO line of a stop while loading)
    ),
    stopped.then(() => 'stop' as const),
  ]);
  if (outcome === 'failed' && !(await isSettled(stopped))) {
    await running.close();
    return 1;
  }
  const signal = await stopped;
  const drainTimeoutMs = parsed.options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS;
  log(`INFO Shutting down (${signal})`);
  await running.close(drainTimeoutMs);
  log('INFO Shutdown complete: model unloaded');
  return 0;
}

async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending');
  return (await Promise.race([promise, Promise.resolve(pending)])) !== pending;
}

main().then(
  (code) => {
    process.exitCode = code;
    // llama.cpp's threads can keep the process alive after close; unref'd, so it only fires if they do.
    setTimeout(() => process.exit(code), 1000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`cpu engine failed: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
