/*
 * The CPU engine's part of the container spec, pure: its command line (the same vLLM names the other
 * engines get, plus --threads and the model file inside the container) and the host config additions
 * (the GGUF mounted read-only, and a CPU quota equal to the thread count).
 */

import type Docker from 'dockerode';

/** The cpu engine's model file and threads, as planned by cpu-plan.ts. */
export interface CpuPlan {
  /** The GGUF on the host. */
  hostModelPath: string;
  /** The same file inside the container. */
  containerModelPath: string;
  /** llama.cpp threads, and the CPUs (NanoCpus) the container gets: always the same number. */
  threads: number;
  sha256?: string;
  /** Lines to show the user (the demo-model notice). */
  notes: string[];
}

export interface CpuArgsInput {
  port: number;
  servedName: string;
  maxModelLen: number;
  maxNumSeqs: number;
  cpu: CpuPlan;
}

export function cpuEngineArgs(input: CpuArgsInput, host = '0.0.0.0', modelPath = input.cpu.containerModelPath): string[] {
  const args = [
    '--host',
    host,
    '--port',
    String(input.port),
    '--model',
    modelPath,
    '--served-model-name',
    input.servedName,
    '--max-model-len',
    String(input.maxModelLen),
    '--max-num-seqs',
    String(input.maxNumSeqs),
    '--threads',
    String(input.cpu.threads),
  ];
  if (input.cpu.sha256) args.push('--sha256', input.cpu.sha256);
  return args;
}

export function cpuHostConfig(cpu: CpuPlan): Pick<Docker.HostConfig, 'Binds' | 'NanoCpus'> {
  return {
    Binds: [`${cpu.hostModelPath}:${cpu.containerModelPath}:ro`],
    // Threads and the quota together: more threads than CPUs under a quota collapses throughput.
    NanoCpus: cpu.threads * 1e9,
  };
}
