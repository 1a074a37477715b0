/*
 * node-llama-cpp, loaded at run time from the engine's own package (engines/cpu), not from the root
 * node_modules: it must be installed with --omit=optional (or npm adds 650 MB of CUDA/Vulkan builds), and
 * the root install cannot use that flag without losing esbuild's platform binary that tsx needs.
 * Only the small part of its API this engine uses is typed here.
 */

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export type Token = number;

export type HistoryItem = { type: 'system'; text: string } | { type: 'user'; text: string } | { type: 'model'; response: string[] };

export interface LlamaTokenizer {
  (text: string, specialTokens?: boolean): Token[];
}

export interface ChatWrapperLike {
  readonly wrapperName: string;
  generateContextState(options: { chatHistory: HistoryItem[] }): {
    contextText: { tokenize(tokenizer: LlamaTokenizer): Token[]; toString(): string };
    /** Texts and special tokens that end a reply (the template's end of turn), besides the EOG tokens. */
    stopGenerationTriggers?: readonly unknown[];
  };
}

/** node-llama-cpp's TokenBias: `set()` skips EOG tokens, so banning them goes through its `_biases` map (see ignore-eos.ts). */
export interface TokenBiasLike {
  set(input: Token | Token[], bias: 'never' | number): TokenBiasLike;
}

export interface GenerateOptions {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  customStopTriggers?: readonly string[];
  tokenBias?: TokenBiasLike;
  signal?: AbortSignal;
  stopOnAbortSignal?: boolean;
  onTextChunk?: (text: string) => void;
  onToken?: (tokens: Token[]) => void;
}

export interface GenerateResult {
  response: string;
  metadata: { stopReason: 'eogToken' | 'stopGenerationTrigger' | 'functionCalls' | 'maxTokens' | 'abort' | 'customStopTrigger' };
}

export interface LlamaChatLike {
  readonly chatWrapper: ChatWrapperLike;
  generateResponse(history: HistoryItem[], options: GenerateOptions): Promise<GenerateResult>;
  dispose(): void;
}

/** LlamaContextSequence: what LlamaChat calls on it to erase and to generate (evaluation-gate.ts wraps these). */
export interface ContextSequenceLike {
  evaluate(tokens: Token[], options?: object): AsyncGenerator<Token, void, unknown>;
  adaptStateToTokens(tokens: Token[], allowShift?: boolean): Promise<void>;
  eraseContextTokenRanges(ranges: ReadonlyArray<{ start: number; end: number }>): Promise<void>;
  dispose(): void;
}

export interface LlamaContextLike {
  readonly contextSize: number;
  getSequence(): ContextSequenceLike;
  dispose(): Promise<void>;
}

export interface LlamaModelLike {
  readonly trainContextSize: number;
  readonly size: number;
  readonly tokenizer: LlamaTokenizer;
  tokenize(text: string, specialTokens?: boolean): Token[];
  /** Every token id of the vocabulary (from the GGUF's token list). */
  iterateAllTokens(): Iterable<Token>;
  /** End of generation: EOS, EOT and whatever else llama.cpp counts as ending a turn. */
  isEogToken(token: Token): boolean;
  createContext(options: { contextSize: number; sequences: number; threads: number; batchSize?: number }): Promise<LlamaContextLike>;
  dispose(): Promise<void>;
}

export interface LlamaLike {
  loadModel(options: { modelPath: string; gpuLayers: 0; onLoadProgress?: (progress: number) => void }): Promise<LlamaModelLike>;
  dispose(): Promise<void>;
}

export interface NodeLlamaCpp {
  getLlama(options: {
    gpu: false;
    build: 'never';
    logLevel?: string;
    logger?: (level: string, message: string) => void;
    maxThreads?: number;
  }): Promise<LlamaLike>;
  LlamaChat: new (options: { contextSequence: ContextSequenceLike; chatWrapper?: 'auto' | ChatWrapperLike }) => LlamaChatLike;
  TokenBias: new (tokenizer: LlamaTokenizer) => TokenBiasLike;
}

/** The folder holding the engine's package.json: $CS_LLM_CPU_RUNTIME_DIR, else engines/cpu beside src/ or dist/. */
export function cpuRuntimeDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CS_LLM_CPU_RUNTIME_DIR) return resolve(env.CS_LLM_CPU_RUNTIME_DIR);
  // src/cpu/runtime.ts and dist/cpu/runtime.js both sit two levels below the package root.
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'engines', 'cpu');
}

export class RuntimeMissingError extends Error {
  constructor(
    readonly runtimeDir: string,
    cause: unknown,
  ) {
    super(
      `node-llama-cpp is not installed in ${runtimeDir} (${(cause as Error)?.message?.split('\n')[0] ?? String(cause)}). ` +
        `Install the CPU engine's runtime: npm ci --omit=optional --ignore-scripts --prefix ${runtimeDir} (or npm run setup:cpu).`,
    );
    this.name = 'RuntimeMissingError';
  }
}

let loaded: Promise<NodeLlamaCpp> | undefined;

/** Imports node-llama-cpp from the engine's runtime folder (once per process). */
export function loadNodeLlamaCpp(env: NodeJS.ProcessEnv = process.env): Promise<NodeLlamaCpp> {
  loaded ??= (async () => {
    const dir = cpuRuntimeDir(env);
    try {
      const manifest = join(dir, 'package.json');
      if (!existsSync(manifest)) throw new Error(`${manifest} does not exist`);
      const entry = createRequire(manifest).resolve('node-llama-cpp');
      return (await import(pathToFileURL(entry).href)) as NodeLlamaCpp;
    } catch (err) {
      loaded = undefined;
      throw new RuntimeMissingError(dir, err);
    }
  })();
  return loaded;
}
