/*
 * Loading the CPU engine's model: the file checks (exists, GGUF, checksum), llama.cpp through node-llama-cpp,
 * the context (one sequence per parallel request) and two LlamaChats per sequence. A failure becomes one
 * CpuEngineLoadError whose message is the line the engine prints and whose kind `up` diagnoses.
 */

import { EvaluationGate, gateSequence } from './evaluation-gate.js';
import { withoutStopTriggers } from './ignore-eos.js';
import { checkModelFile, ModelFileProblem, verifyChecksum } from './model-file.js';
import type { CpuEngineOptions } from './options.js';
import {
  loadNodeLlamaCpp,
  type LlamaChatLike,
  type LlamaContextLike,
  type LlamaLike,
  type LlamaModelLike,
  type NodeLlamaCpp,
} from './runtime.js';

/** The model could not be loaded; `message` is the line the engine prints (and the CLI diagnoses). */
export class CpuEngineLoadError extends Error {
  constructor(
    message: string,
    readonly kind: 'missing' | 'not-gguf' | 'checksum' | 'context-too-large' | 'out-of-memory' | 'runtime' | 'load' | 'stopped',
  ) {
    super(message);
    this.name = 'CpuEngineLoadError';
  }
}

/** A stop asked for while loading: the load gives up at its next step. */
export class StoppedWhileLoading extends Error {
  constructor() {
    super('stopped while loading the model');
  }
}

/** The two chats over one context sequence: the same template, the second without its stop triggers (ignore_eos). */
export interface SequenceChats {
  normal: LlamaChatLike;
  ignoringEos: LlamaChatLike;
}

export interface LoadedModel {
  runtime: NodeLlamaCpp;
  llama: LlamaLike;
  model: LlamaModelLike;
  context: LlamaContextLike;
  chats: SequenceChats[];
  contextSize: number;
}

export async function loadModel(
  options: CpuEngineOptions & { log: (line: string) => void; parallel: number },
  gate: EvaluationGate,
  stopped: () => boolean,
): Promise<LoadedModel> {
  const { log, modelPath, threads, parallel } = options;
  const { sizeBytes } = checkModelFile(modelPath);
  if (options.sha256) {
    await verifyChecksum(modelPath, options.sha256);
    log(`INFO model file checksum verified (sha256 ${options.sha256.slice(0, 12)}...)`);
  }
  log(`INFO Loading model weights from ${modelPath} (${(sizeBytes / 1e6).toFixed(1)} MB)`);
  const runtime = await loadNodeLlamaCpp(options.env);
  const llama = await runtime.getLlama({
    gpu: false,
    build: 'never',
    maxThreads: threads,
    logLevel: 'warn',
    logger: (level, message) => {
      const text = message.trim();
      if (text) log(`llama.cpp ${level}: ${text}`);
    },
  });
  if (stopped()) throw new StoppedWhileLoading();
  let shown = -1;
  const model = await llama.loadModel({
    modelPath,
    gpuLayers: 0,
    onLoadProgress: (progress) => {
      const percent = Math.floor(progress * 100);
      if (percent >= shown + 25 || (percent === 100 && shown !== 100)) {
        shown = percent;
        log(`INFO Loading model weights: ${percent}%`);
      }
    },
  });
  if (stopped()) {
    await model.dispose();
    await llama.dispose();
    throw new StoppedWhileLoading();
  }
  const trained = model.trainContextSize;
  const wanted = options.ctxSize ?? trained;
  if (wanted > trained) {
    await model.dispose();
    await llama.dispose();
    throw new CpuEngineLoadError(`requested context ${wanted} is larger than the model's context length ${trained}`, 'context-too-large');
  }
  // contextSize is per sequence (node-llama-cpp allocates contextSize x sequences KV cells).
  const context = await model.createContext({ contextSize: wanted, sequences: parallel, threads });
  const chats: SequenceChats[] = [];
  for (let i = 0; i < parallel; i++) {
    // One sequence at a time generates (the pool), so its two chats never run at once.
    // Erasing an earlier request's tokens holds the other generations back one batch, not whole replies.
    const contextSequence = gateSequence(context.getSequence(), gate);
    const normal = new runtime.LlamaChat({ contextSequence, chatWrapper: 'auto' });
    chats.push({
      normal,
      ignoringEos: new runtime.LlamaChat({ contextSequence, chatWrapper: withoutStopTriggers(normal.chatWrapper) }),
    });
  }
  return { runtime, llama, model, context, chats, contextSize: wanted };
}

export async function disposeModel(loaded: LoadedModel): Promise<void> {
  for (const chat of loaded.chats) {
    chat.ignoringEos.dispose();
    chat.normal.dispose();
  }
  await loaded.context.dispose();
  await loaded.model.dispose();
  await loaded.llama.dispose();
}

export function asLoadError(err: unknown): CpuEngineLoadError {
  if (err instanceof CpuEngineLoadError) return err;
  if (err instanceof ModelFileProblem) return new CpuEngineLoadError(err.message, err.kind);
  if (err instanceof StoppedWhileLoading) return new CpuEngineLoadError(err.message, 'stopped');
  const message = (err as Error)?.message ?? String(err);
  if (/is not installed in/.test(message)) return new CpuEngineLoadError(message, 'runtime');
  if (/alloc|out of memory|ENOMEM|Cannot allocate|failed to create context|insufficient memory/i.test(message)) {
    return new CpuEngineLoadError(`not enough memory to load the model or its context: ${message}`, 'out-of-memory');
  }
  return new CpuEngineLoadError(`failed to load the model: ${message}`, 'load');
}
