/*
 * vLLM-like log lines, so the engine readiness and log diagnosis code sees the same shapes from the
 * simulator as from vLLM. Pure formatting; the caller decides where lines go.
 */

import { STATUS_CODES } from 'node:http';

export const SIM_VERSION = '0.0.0+cs-llm-sim';
export const SHARD_COUNT = 4;

function stamp(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(now.getUTCMonth() + 1)}-${pad(now.getUTCDate())} ${pad(now.getUTCHours())}:${pad(now.getUTCMinutes())}:${pad(now.getUTCSeconds())}`;
}

export function vllmLine(level: 'INFO' | 'WARNING' | 'ERROR', source: string, message: string, now = new Date()): string {
  return `${level} ${stamp(now)} [${source}] ${message}`;
}

export function preambleLines(args: {
  model: string;
  servedModelNames: string[];
  maxModelLen: number;
  maxNumSeqs: number;
  ignored: string[];
}): string[] {
  const lines = [
    vllmLine('INFO', 'api_server.py:1885', `vLLM API server version ${SIM_VERSION}`),
    vllmLine(
      'INFO',
      'utils.py:326',
      `non-default args: {'model': '${args.model}', 'served_model_name': [${args.servedModelNames.map((n) => `'${n}'`).join(', ')}], 'max_model_len': ${args.maxModelLen}, 'max_num_seqs': ${args.maxNumSeqs}}`,
    ),
  ];
  if (args.ignored.length > 0) lines.push(vllmLine('INFO', 'sim', `cs-llm simulator ignores these vLLM flags: ${args.ignored.join(' ')}`));
  lines.push(vllmLine('INFO', 'gpu_model_runner.py:1770', `Starting to load model ${args.model}...`));
  return lines;
}

export function shardProgressLine(done: number, elapsedSeconds: number): string {
  const percent = Math.round((done / SHARD_COUNT) * 100);
  const rate = done > 0 && elapsedSeconds > 0 ? `${(done / elapsedSeconds).toFixed(2)}it/s` : '?it/s';
  const secs = Math.floor(elapsedSeconds);
  return `Loading safetensors checkpoint shards: ${String(percent).padStart(3)}% Completed | ${done}/${SHARD_COUNT} [00:${String(secs).padStart(2, '0')}<00:00, ${rate}]`;
}

/** What the simulated load reports about memory; `availableKvBytes` is absent when no GPU memory is simulated. */
export interface LoadedMemory {
  weightsBytesPerGpu: number;
  availableKvBytes?: number;
  kvCacheTokens: number;
}

/**
 * The weight-loading and memory lines, in the order and words vLLM's v1 engine prints them (vLLM 0.10):
 * `Loading weights took` (model_executor/model_loader/default_loader.py), `Model loading took X GiB and Y
 * seconds` (v1/worker/gpu_model_runner.py), `Available KV cache memory` (v1/worker/gpu_worker.py), then the
 * KV cache size and maximum concurrency (v1/core/kv_cache_utils.py), counts with thousands separators.
 */
export function memoryLines(args: { loadSeconds: number; maxModelLen: number; memory: LoadedMemory }): string[] {
  const { memory } = args;
  const lines = [
    vllmLine('INFO', 'default_loader.py:262', `Loading weights took ${args.loadSeconds.toFixed(2)} seconds`),
    vllmLine(
      'INFO',
      'gpu_model_runner.py:1792',
      `Model loading took ${(memory.weightsBytesPerGpu / 1024 ** 3).toFixed(4)} GiB and ${args.loadSeconds.toFixed(6)} seconds`,
    ),
  ];
  if (memory.availableKvBytes !== undefined)
    lines.push(vllmLine('INFO', 'gpu_worker.py:276', `Available KV cache memory: ${(memory.availableKvBytes / 1024 ** 3).toFixed(2)} GiB`));
  return lines;
}

export function loadedLines(args: { loadSeconds: number; maxModelLen: number; memory: LoadedMemory; url: string }): string[] {
  const concurrency = (args.memory.kvCacheTokens / args.maxModelLen).toFixed(2);
  return [
    ...memoryLines(args),
    vllmLine('INFO', 'kv_cache_utils.py:716', `GPU KV cache size: ${args.memory.kvCacheTokens.toLocaleString('en-US')} tokens`),
    vllmLine(
      'INFO',
      'kv_cache_utils.py:720',
      `Maximum concurrency for ${args.maxModelLen.toLocaleString('en-US')} tokens per request: ${concurrency}x`,
    ),
    vllmLine('INFO', 'api_server.py:1818', `Starting vLLM API server 0 on ${args.url}`),
    `INFO:     Started server process [${process.pid}]`,
    'INFO:     Waiting for application startup.',
    'INFO:     Application startup complete.',
  ];
}

export function uvicornRunningLine(url: string): string {
  return `INFO:     Uvicorn running on ${url} (Press CTRL+C to quit)`;
}

/** What vLLM's engine core prints when start-up fails; `line` is the cause (e.g. the CUDA OOM line). */
export function crashLines(line: string): string[] {
  const source = 'core.py:700';
  return [
    vllmLine('ERROR', source, 'EngineCore failed to start.'),
    vllmLine('ERROR', source, 'Traceback (most recent call last):'),
    vllmLine('ERROR', source, '  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/engine/core.py", line 691, in run_engine_core'),
    vllmLine('ERROR', source, '    engine_core = EngineCoreProc(*args, **kwargs)'),
    vllmLine('ERROR', source, line),
    line,
  ];
}

export function accessLine(remote: string, method: string, path: string, status: number): string {
  return `INFO:     ${remote} - "${method} ${path} HTTP/1.1" ${status} ${STATUS_CODES[status] ?? ''}`.trimEnd();
}
