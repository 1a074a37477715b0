import type Docker from 'dockerode';
import { EnvironmentError } from '../core/errors.js';
import { gpuStackBroken, type GpuReport } from '../gpu/detect.js';
import { probeDocker } from './docker.js';
import { probeGpuRuntime } from './gpu-preflight.js';
import type { EngineKind } from './kinds.js';

// What `--engine auto` means on this host: vllm when a usable NVIDIA GPU and Docker's NVIDIA runtime are
// there, otherwise cpu, with the reason in one line; a GPU box whose driver is broken is refused instead.

export interface AutoChoice {
  kind: Extract<EngineKind, 'vllm' | 'cpu'>;
  /** One line: why. */
  why: string;
}

/** `--engine auto`: vllm when a usable NVIDIA GPU and Docker's NVIDIA runtime are found, otherwise cpu. */
export async function chooseAutoEngine(
  env: NodeJS.ProcessEnv,
  detect: () => Promise<GpuReport>,
  docker: Docker,
  instance: string,
): Promise<AutoChoice> {
  const report = await detect().catch(
    (err: unknown) =>
      ({ source: 'none', usable: false, problem: (err as Error).message, gpus: [] }) as Pick<
        GpuReport,
        'source' | 'usable' | 'problem' | 'fix' | 'gpus'
      >,
  );
  if (gpuStackBroken(report)) {
    // A GPU box with a broken driver must not quietly serve a tiny CPU model: repair it, or ask for cpu.
    throw new EnvironmentError(`the NVIDIA driver on this host is not working, so engine auto will not choose: ${report.problem}`, {
      next: `${report.fix ?? 'Repair the NVIDIA driver (nvidia-smi must list the GPUs).'} To run on the CPU anyway: cs-llm up --engine cpu.`,
    });
  }
  if (!report.usable || report.gpus.length === 0) {
    return { kind: 'cpu', why: `engine auto: cpu, because there is no usable NVIDIA GPU (${report.problem ?? 'none found'})` };
  }
  const names = report.gpus.map((g) => g.name).join(', ');
  const probe = await probeDocker(docker, env);
  // A GPU box falls back to the CPU only with the way back in the same line: the operator most likely wanted the GPU.
  if (!probe.reachable)
    return {
      kind: 'cpu',
      why: `engine auto: cpu, because Docker is not usable (${probe.detail}), and vllm runs only in Docker (GPU: ${names}); to serve on the GPU: ${withoutStop(probe.fix ?? 'start Docker')}, then cs-llm up again`,
    };
  const runtime = await probeGpuRuntime(docker, { mode: 'all' }, instance).catch((err: unknown) => ({
    verdict: 'unknown' as const,
    reason: (err as Error).message,
  }));
  if (runtime.verdict === 'missing') {
    return {
      kind: 'cpu',
      why: `engine auto: cpu, because Docker cannot give the GPU (${names}) to containers: ${runtime.diagnosis.summary}; to serve on the GPU: install the NVIDIA Container Toolkit, run sudo nvidia-ctk runtime configure --runtime=docker and restart Docker, then cs-llm up again`,
    };
  }
  return { kind: 'vllm', why: `engine auto: vllm, on ${names}${runtime.verdict === 'ok' ? ' (Docker accepts GPU requests)' : ''}` };
}

/** "Do this." -> "do this", to go on inside a sentence. */
function withoutStop(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1).replace(/\.$/, '');
}
