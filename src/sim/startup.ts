/*
 * What the simulator does before it listens, as vLLM does before its API server starts: the preamble lines,
 * then either a start-up failure (--crash-at-start, or vLLM's memory refusals for the simulated GPU) or the
 * KV cache the loaded model leaves.
 */

import { crashLines, memoryLines, preambleLines, shardProgressLine, SHARD_COUNT, type LoadedMemory } from './logs.js';
import { simulateMemory } from './memory.js';
import type { ResolvedSimulatorOptions } from './options.js';

/** Start-up failed on purpose (--crash-at-start). `lines` is what vLLM would print to stderr. */
export class SimulatedCrash extends Error {
  constructor(readonly lines: string[]) {
    super(lines[lines.length - 1]);
    this.name = 'SimulatedCrash';
  }
}

/** Without a simulated GPU the KV cache holds this many full contexts; usage = tokens held by running sequences / capacity. */
const KV_CACHE_CONTEXTS = 4;

/**
 * Prints the preamble and returns the KV cache the simulated GPU leaves, or throws SimulatedCrash with a
 * start-up refusal as vLLM words it: a GPU with too little free memory refuses before loading; a KV cache
 * too small for --max-model-len refuses after loading the weights, naming the longest context that fits.
 */
export function startUp(options: ResolvedSimulatorOptions, ignoredFlags: string[]): LoadedMemory {
  for (const line of preambleLines({ ...options, ignored: ignoredFlags })) options.log(line);
  if (options.crashAtStart) throw new SimulatedCrash(crashLines(options.crashAtStart));
  const memory = simulateMemory(options);
  if (memory.kind === 'unmodelled') return { weightsBytesPerGpu: 0, kvCacheTokens: options.maxModelLen * KV_CACHE_CONTEXTS };
  if (memory.kind === 'fits') return memory;
  if (memory.availableKvBytes !== null) {
    // The weights were loaded before the KV cache was found too small: their lines come first, as in vLLM.
    for (let done = 0; done <= SHARD_COUNT; done++) options.log(shardProgressLine(done, 0));
    const loaded = { weightsBytesPerGpu: memory.weightsBytesPerGpu, availableKvBytes: memory.availableKvBytes, kvCacheTokens: 0 };
    for (const line of memoryLines({ loadSeconds: 0, maxModelLen: options.maxModelLen, memory: loaded })) options.log(line);
  }
  throw new SimulatedCrash(crashLines(memory.line));
}
