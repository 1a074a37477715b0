/*
 * Known engine failures, recognised from container log lines or Docker Engine errors and explained in
 * plain words with the flag that fixes them. Pure: text in, a Diagnosis (or null) out, so every rule is
 * unit-tested against the exact lines vLLM and dockerd print.
 */

import { VLLM_IMAGE, VLLM_IMAGE_CUDA, VLLM_IMAGE_MIN_DRIVER } from './kinds.js';

export type DiagnosisKind =
  | 'cuda-oom'
  | 'gpu-too-old'
  | 'driver-too-old'
  | 'kv-cache-too-small'
  | 'free-memory-below-utilization'
  | 'no-nvidia-runtime'
  | 'port-in-use'
  | 'image-not-found'
  | 'registry-unreachable'
  | 'gated-model'
  | 'model-file-missing'
  | 'model-not-gguf'
  | 'model-checksum'
  | 'context-too-large'
  | 'host-memory';

export interface Diagnosis {
  kind: DiagnosisKind;
  /** What went wrong, in plain words. */
  summary: string;
  /** What to do about it: usually the flag that fixes it. */
  fix: string;
  /** The line that matched, for the report. */
  evidence: string;
  /** Whether the host (not the engine or model choice) is at fault: maps to EnvironmentError. */
  environment: boolean;
  /** For kv-cache-too-small: the largest context the KV cache can hold. */
  maxContext?: number;
}

interface Rule {
  kind: DiagnosisKind;
  test: RegExp;
  explain(match: RegExpMatchArray, line: string): Omit<Diagnosis, 'kind' | 'evidence'>;
}

// Order matters: the more specific explanation wins when several lines match (the KV-cache line is
// usually followed by a generic ValueError; a CUDA OOM can follow the free-memory check).
const RULES: Rule[] = [
  {
    // vLLM's v1 engine (vllm/v1/core/kv_cache_utils.py); "models's" in some releases.
    kind: 'kv-cache-too-small',
    test: /To serve at least one request with the models?'s? max seq len \((\d+)\)/,
    explain: (m, line) => {
      const wanted = Number(m[1]);
      const estimate = /the estimated maximum model length is (\d+)/.exec(line);
      const fits = estimate ? Number(estimate[1]) : undefined;
      return {
        summary:
          fits !== undefined
            ? `the context length ${wanted} does not fit the KV cache, which holds ${fits} tokens on this GPU`
            : `the context length ${wanted} does not fit the KV cache left on this GPU`,
        fix: fits !== undefined ? `Use --context ${fits} or less, or a smaller model (--model).` : 'Use a smaller --context or --model.',
        environment: false,
        ...(fits !== undefined ? { maxContext: fits } : {}),
      };
    },
  },
  {
    kind: 'kv-cache-too-small',
    test: /max seq len \((\d+)\) is larger than the maximum number of tokens that can be stored in KV cache \((\d+)\)/i,
    explain: (m) => {
      const wanted = Number(m[1]);
      const fits = Number(m[2]);
      return {
        summary: `the context length ${wanted} does not fit the KV cache, which holds ${fits} tokens on this GPU`,
        fix: `Use --context ${fits} or less, or a smaller model (--model).`,
        environment: false,
        maxContext: fits,
      };
    },
  },
  {
    kind: 'free-memory-below-utilization',
    test: /free memory on device.*(less than|smaller than).*(desired )?gpu memory utilization/i,
    explain: () => ({
      summary: 'the GPU has less free memory than the requested GPU memory utilization (another process or a display uses it)',
      fix: 'Free the GPU (nvidia-smi shows who uses it), or lower the utilization (CS_LLM_ENGINE_GPU_MEMORY_UTILIZATION=0.8) and pick a smaller --context or --model.',
      environment: false,
    }),
  },
  {
    kind: 'cuda-oom',
    test: /CUDA out of memory|torch\.OutOfMemoryError|OutOfMemoryError: CUDA|cudaErrorMemoryAllocation/i,
    explain: () => ({
      summary: 'the GPU ran out of memory while the engine started (weights, KV cache or CUDA-graph capture)',
      fix: 'Use a smaller --context or a smaller --model, or lower the utilization (CS_LLM_ENGINE_GPU_MEMORY_UTILIZATION=0.85).',
      environment: false,
    }),
  },
  {
    // vLLM refuses a quantization its kernels do not support on this GPU (vllm/config: "The quantization method
    // awq is not supported for the current GPU. Minimum capability: 75. Current capability: 70."; compressed
    // tensors: "Quantization scheme is not supported ... Min capability: 89."). Capabilities are major*10+minor.
    // The plan refuses this before a pull when nvidia-smi reports compute_cap; older drivers do not.
    kind: 'gpu-too-old',
    test: /(?:quantization method (\S+)|Quantization scheme) is not supported for the current GPU\.\s*Min(?:imum)? capability: (\d+)\.\s*Current capability: (\d+)/i,
    explain: (m) => {
      const dotted = (c: string) => `${Math.floor(Number(c) / 10)}.${Number(c) % 10}`;
      const what = m[1] ? `${m[1].toUpperCase()} kernels` : "the model's quantization kernels";
      return {
        summary: `this GPU (compute capability ${dotted(m[3]!)}) is too old for ${what}, which need ${dotted(m[2]!)} or newer`,
        fix: `Run it on a GPU of compute capability ${dotted(m[2]!)} or newer, or serve a GGUF model on the CPU: cs-llm up --engine cpu.`,
        environment: true,
      };
    },
  },
  {
    // The host driver supports an older CUDA than the image's. Seen three ways (vLLM issues #5635, #4940, #5283):
    // the container toolkit refuses to start it ("nvidia-container-cli: requirement error: unsatisfied condition:
    // cuda>=12.4"), PyTorch refuses at CUDA init ("The NVIDIA driver on your system is too old (found version
    // 12040)"), or a consumer GPU is refused CUDA's forward compatibility ("Error 804: forward compatibility was
    // attempted on non supported HW").
    kind: 'driver-too-old',
    test: /requirement error: unsatisfied condition: cuda>=([\d.]+)|NVIDIA driver on your system is too old \(found version (\d+)\)|forward compatibility was attempted on non supported HW/i,
    explain: (m) => {
      const found = m[2] ? ` (it supports CUDA ${Math.floor(Number(m[2]) / 1000)}.${Math.floor((Number(m[2]) % 1000) / 10)})` : '';
      const summary = m[1]
        ? `the host's NVIDIA driver is older than CUDA ${m[1]}, which the engine image needs`
        : `the host's NVIDIA driver${found} is older than the CUDA the engine image is built for (${VLLM_IMAGE_CUDA} for the default ${VLLM_IMAGE})`;
      return {
        summary,
        fix: `Update the NVIDIA driver to one whose CUDA version (the top line of nvidia-smi) is at least that (CUDA ${VLLM_IMAGE_CUDA} needs driver ${VLLM_IMAGE_MIN_DRIVER} or newer), or pass --image with a vLLM image built for the CUDA your driver supports.`,
        environment: true,
      };
    },
  },
  {
    kind: 'no-nvidia-runtime',
    test: /could not select device driver "nvidia"|unknown or invalid runtime name: nvidia|nvidia-container-cli: initialization error/i,
    explain: () => ({
      summary: 'Docker cannot give GPUs to containers: the NVIDIA Container Toolkit is missing or not configured',
      fix: 'Install nvidia-container-toolkit and restart Docker (sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker), or run without a GPU: --engine sim --gpus none.',
      environment: true,
    }),
  },
  {
    kind: 'port-in-use',
    test: /address already in use|port is already allocated/i,
    explain: () => ({
      summary: 'the engine port on 127.0.0.1 is already taken by another process or container',
      fix: 'Pick another port with --port, or stop what listens there (ss -ltnp).',
      environment: true,
    }),
  },
  {
    kind: 'gated-model',
    test: /gated repo|Access to model .* is restricted|401 Client Error|403 Client Error|GatedRepoError|Invalid credentials in Authorization header/i,
    explain: () => ({
      summary: 'the model is gated on Hugging Face and no valid token was given',
      fix: 'Accept the model licence on huggingface.co, then export HF_TOKEN=<your token> and run cs-llm up again.',
      environment: true,
    }),
  },
  // The cpu engine's load failures (src/cpu/engine-state.ts prints these lines).
  {
    kind: 'model-file-missing',
    test: /model file not found: (\S+)/,
    explain: (m) => ({
      summary: `the engine cannot find its model file ${m[1]}`,
      fix: 'Check --model: the GGUF file must exist on the host (it is mounted read-only into the container); cs-llm models --engine cpu lists the catalog files.',
      environment: false,
    }),
  },
  {
    kind: 'model-not-gguf',
    test: /model file is not GGUF/,
    explain: () => ({
      summary: 'the model file is not a GGUF file, the format llama.cpp reads',
      fix: 'Pass a .gguf file with --model (safetensors models run on the vllm engine).',
      environment: false,
    }),
  },
  {
    kind: 'model-checksum',
    test: /model file checksum mismatch/,
    explain: () => ({
      summary: 'the model file is not the one the catalog names (its sha256 differs): damaged or replaced',
      fix: 'Download the file again, or reinstall cs-llm for the shipped demo models.',
      environment: false,
    }),
  },
  {
    kind: 'context-too-large',
    test: /requested context (\d+) is larger than the model's context length (\d+)/,
    explain: (m) => ({
      summary: `the context ${m[1]} is larger than the model's own context length ${m[2]}`,
      fix: `Use --context ${m[2]} or less.`,
      environment: false,
      maxContext: Number(m[2]),
    }),
  },
  {
    kind: 'host-memory',
    test: /not enough memory to load the model/,
    explain: () => ({
      summary: "the machine's memory is too small for the model and its context",
      fix: 'Free memory, or use a smaller --context or a smaller model (cs-llm models --engine cpu shows what fits).',
      environment: true,
    }),
  },
  {
    kind: 'image-not-found',
    test: /manifest unknown|manifest for .* not found|No such image|pull access denied|repository does not exist/i,
    explain: () => ({
      summary: 'the engine image is not available: not in the registry and not loaded on this host',
      fix: 'Check --image (name and tag), or on an air-gapped host load the offline bundle first (docker load -i <bundle>) and use --pull-policy never.',
      environment: true,
    }),
  },
  {
    kind: 'registry-unreachable',
    test: /dial tcp .*: (connect: connection refused|i\/o timeout|no such host)|Temporary failure in name resolution|TLS handshake timeout/i,
    explain: () => ({
      summary: 'the image registry cannot be reached from this host',
      fix: 'Check the network or registry, or load the image beforehand (docker load -i <bundle>) and use --pull-policy never.',
      environment: true,
    }),
  },
];

/** The first rule (in priority order) that matches any of the lines. */
export function diagnose(lines: readonly string[]): Diagnosis | null {
  for (const rule of RULES) {
    for (const line of lines) {
      const match = line.match(rule.test);
      if (match) return { kind: rule.kind, evidence: line.trim(), ...rule.explain(match, line) };
    }
  }
  return null;
}

/** A Docker Engine error (as dockerode reports it: statusCode + json.message or message). */
export function diagnoseDockerError(err: unknown): Diagnosis | null {
  return diagnose([dockerErrorMessage(err)]);
}

/** The message dockerd sent, without dockerode's "(HTTP code 500) server error -" prefix. */
export function dockerErrorMessage(err: unknown): string {
  const e = err as { json?: { message?: string } | null; message?: string; reason?: string };
  if (e && typeof e === 'object') {
    if (e.json && typeof e.json === 'object' && typeof e.json.message === 'string') return e.json.message;
    if (typeof e.message === 'string') return e.message.replace(/^\(HTTP code \d+\)\s*[^-]*-\s*/, '');
  }
  return String(err);
}

/** Split a chunk of log text into lines, dropping the carriage-return redraws of progress bars. */
export function splitLogLines(text: string): string[] {
  return text
    .split('\n')
    .map((line) => {
      const parts = line.split('\r').filter((p) => p.trim() !== '');
      return (parts[parts.length - 1] ?? '').trimEnd();
    })
    .filter((line) => line !== '');
}
