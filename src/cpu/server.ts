/*
 * The CPU engine: an OpenAI-compatible HTTP server (node:http) around llama.cpp through node-llama-cpp,
 * answering in the simulator's (that is, vLLM's) wire format: GET /health (503 while the model loads),
 * GET /v1/models, POST /v1/chat/completions (streaming or not), GET /metrics with vLLM's names.
 * Each sequence of the llama.cpp context runs one generation with the stateless LlamaChat (the client
 * sends the whole history); more requests wait in a bounded queue, and beyond it get 429 + Retry-After.
 * Importable by tests (`startCpuEngine({modelPath, port: 0, threads: 1})`) and run by main.ts.
 * Stopping drains: close(drainTimeoutMs) refuses new requests (503, listener closed), lets the ones in flight
 * finish, and only after the timeout stops them with an error the client can read (503, or an SSE error event).
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { randomInt, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { SimulatorMetrics } from '../sim/metrics.js';
import {
  contextProblem,
  MAX_BODY_BYTES,
  parseChatRequest,
  parseJsonBody,
  readBody,
  type ChatRequest,
  type RequestProblem,
} from '../sim/requests.js';
import { SequenceSlots } from '../sim/slots.js';
import { createAccessGuard, type AccessGuard } from '../openai-server/access.js';
import { errorBody } from '../openai-server/errors.js';
import { EvaluationGate, gateSequence } from './evaluation-gate.js';
import { toChatHistory } from './history.js';
import { banTokens, endOfGenerationTokens, ignoreEosProblem, withoutStopTriggers } from './ignore-eos.js';
import { checkModelFile, ModelFileProblem, verifyChecksum } from './model-file.js';
import { DEFAULT_MAX_QUEUE, DEFAULT_STREAM_INTERVAL_MS, defaultServedName, type CpuEngineOptions } from './options.js';
import {
  loadNodeLlamaCpp,
  type GenerateOptions,
  type LlamaChatLike,
  type LlamaContextLike,
  type LlamaLike,
  type LlamaModelLike,
  type NodeLlamaCpp,
  type TokenBiasLike,
} from './runtime.js';

export type { CpuEngineOptions } from './options.js';

export interface CpuEngineStats {
  state: 'loading' | 'ready' | 'failed';
  running: number;
  waiting: number;
  completed: number;
  aborted: number;
  rejected: number;
  promptTokens: number;
  generationTokens: number;
}

export interface RunningCpuEngine {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  servedModelName: string;
  /** Resolves when the model is loaded and requests are served; rejects with the load failure. */
  ready: Promise<void>;
  /** The context length per sequence, once loaded. */
  contextSize(): number | undefined;
  stats(): CpuEngineStats;
  /**
   * Stops serving and unloads the model. New connections are refused and requests on open connections get
   * 503 at once; requests in flight (generating or queued) get up to drainTimeoutMs (default 0) to finish,
   * then are stopped with a 503 error (an SSE error event for a stream already answering). Calling it again
   * with 0 while a drain runs ends the drain now.
   */
  close(drainTimeoutMs?: number): Promise<void>;
}

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

export class CpuEngineListenError extends Error {}

/** After the drain timeout stops what is left: how long aborted generations get to unwind before sockets are cut. */
const ABORT_GRACE_MS = 5000;

/** Without a temperature in the request: llama.cpp's server default. */
const DEFAULT_TEMPERATURE = 0.8;

/** The two chats over one context sequence: the same template, the second without its stop triggers (ignore_eos). */
interface SequenceChats {
  normal: LlamaChatLike;
  ignoringEos: LlamaChatLike;
}

interface Loaded {
  runtime: NodeLlamaCpp;
  llama: LlamaLike;
  model: LlamaModelLike;
  context: LlamaContextLike;
  chats: SequenceChats[];
  contextSize: number;
  /** Bans every end-of-generation token; built on the first ignore_eos request (a walk over the vocabulary). */
  eogBan?: TokenBiasLike;
}

export interface StartCpuEngineOptions extends CpuEngineOptions {
  /** Resolve once listening, before the model is loaded (main.ts); default: after the load. */
  waitForLoad?: boolean;
}

export async function startCpuEngine(options: StartCpuEngineOptions): Promise<RunningCpuEngine> {
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  const host = options.host ?? '127.0.0.1';
  const state = new EngineState({ ...options, log });
  const server = createServer((req, res) => state.serve(req, res));
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message;
      reject(new CpuEngineListenError(`cannot listen on ${host}:${options.port}: ${why}`));
    });
    server.listen(options.port, host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const shownHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
  log(`INFO cs-llm cpu engine listening on http://${host.includes(':') ? `[${host}]` : host}:${port} (threads ${options.threads})`);
  const ready = state.load();
  ready.catch(() => undefined);

  let closing: Promise<void> | undefined;
  const engine: RunningCpuEngine = {
    url: `http://${shownHost}:${port}`,
    port,
    servedModelName: state.servedName,
    ready,
    contextSize: () => state.contextSize,
    stats: () => state.stats(),
    close: (drainTimeoutMs = 0) => {
      if (closing) {
        if (drainTimeoutMs <= 0) state.endDrainWait();
        return closing;
      }
      closing = (async () => {
        // Everything up to the first await runs in this tick: no request can start between the check of what
        // is in flight and the listener closing.
        const inFlight = state.beginDrain();
        const listening = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (drainTimeoutMs > 0)
          log(
            `INFO Not accepting requests any more; ${inFlight} in flight${inFlight > 0 ? `, waiting up to ${drainTimeoutMs} ms for them to finish` : ''}`,
          );
        const drained = await state.whenIdle(drainTimeoutMs);
        if (drained === 'idle') {
          if (inFlight > 0 && drainTimeoutMs > 0) log('INFO Drained: every request in flight finished');
        } else {
          const stopped = state.stopAll();
          const why = drained === 'ended' ? 'the drain was ended early' : `the drain timeout of ${drainTimeoutMs} ms passed`;
          if (drainTimeoutMs > 0) log(`WARN Stopping ${stopped} request(s) still in flight (${why}); their clients get a 503 error`);
          await state.whenIdle(ABORT_GRACE_MS);
        }
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
        await listening;
        // A load still running (a stop during loading) finishes before its model can be disposed.
        await ready.catch(() => undefined);
        await state.dispose();
      })();
      return closing;
    },
  };
  if (options.waitForLoad !== false) {
    try {
      await ready;
    } catch (err) {
      await engine.close();
      throw err;
    }
  }
  return engine;
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function sendProblem(res: ServerResponse, problem: RequestProblem): void {
  sendJson(res, problem.status, errorBody(problem.status, problem.message, problem.param));
}

class ClientGone extends Error {}

class StoppedWhileLoading extends Error {
  constructor() {
    super('stopped while loading the model');
  }
}

/** The engine stopped a request it could not finish before stopping: the client gets this as a 503. */
class EngineStopping extends Error {}

class EngineState {
  readonly servedName: string;
  contextSize: number | undefined;
  private status: 'loading' | 'ready' | 'failed' = 'loading';
  private loaded: Loaded | undefined;
  private readonly slots: SequenceSlots;
  private readonly free: SequenceChats[] = [];
  private readonly gate = new EvaluationGate();
  private readonly metrics: SimulatorMetrics;
  private readonly inFlight = new Set<AbortController>();
  private readonly kvTokens = new Map<AbortController, number>();
  private readonly counts = { completed: 0, aborted: 0, rejected: 0 };
  private readonly parallel: number;
  private readonly maxQueue: number;
  private readonly streamIntervalMs: number;
  private closed = false;
  /** Requests being served (body read, queued, generating or writing), for the drain. */
  private readonly active = new Set<Promise<void>>();
  private readonly idleWaiters = new Set<() => void>();
  private stopReason: EngineStopping | undefined;
  private drainWaitEnd: (() => void) | undefined;
  private readonly access: AccessGuard;

  constructor(private readonly options: CpuEngineOptions & { log: (line: string) => void }) {
    this.access = createAccessGuard(options);
    this.servedName = options.servedModelName ?? defaultServedName(options.modelPath);
    this.parallel = options.parallel ?? 1;
    this.maxQueue = options.maxQueue ?? DEFAULT_MAX_QUEUE;
    this.streamIntervalMs = options.streamIntervalMs ?? DEFAULT_STREAM_INTERVAL_MS;
    this.slots = new SequenceSlots(this.parallel);
    this.metrics = new SimulatorMetrics(this.servedName);
  }

  stats(): CpuEngineStats {
    return {
      state: this.status,
      running: this.slots.running,
      waiting: this.slots.waiting,
      ...this.counts,
      promptTokens: this.metrics.promptTokens,
      generationTokens: this.metrics.generationTokens,
    };
  }

  async load(): Promise<void> {
    const { log, modelPath, threads } = this.options;
    const started = Date.now();
    try {
      const { sizeBytes } = checkModelFile(modelPath);
      if (this.options.sha256) {
        await verifyChecksum(modelPath, this.options.sha256);
        log(`INFO model file checksum verified (sha256 ${this.options.sha256.slice(0, 12)}...)`);
      }
      log(`INFO Loading model weights from ${modelPath} (${(sizeBytes / 1e6).toFixed(1)} MB)`);
      const runtime = await loadNodeLlamaCpp(this.options.env);
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
      if (this.closed) throw new StoppedWhileLoading();
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
      if (this.closed) {
        await model.dispose();
        await llama.dispose();
        throw new StoppedWhileLoading();
      }
      const trained = model.trainContextSize;
      const wanted = this.options.ctxSize ?? trained;
      if (wanted > trained) {
        await model.dispose();
        await llama.dispose();
        throw new CpuEngineLoadError(
          `requested context ${wanted} is larger than the model's context length ${trained}`,
          'context-too-large',
        );
      }
      // contextSize is per sequence (node-llama-cpp allocates contextSize x sequences KV cells).
      const context = await model.createContext({ contextSize: wanted, sequences: this.parallel, threads });
      const chats: SequenceChats[] = [];
      for (let i = 0; i < this.parallel; i++) {
        // One sequence at a time generates (the pool), so its two chats never run at once.
        // Erasing an earlier request's tokens holds the other generations back one batch, not whole replies.
        const contextSequence = gateSequence(context.getSequence(), this.gate);
        const normal = new runtime.LlamaChat({ contextSequence, chatWrapper: 'auto' });
        chats.push({
          normal,
          ignoringEos: new runtime.LlamaChat({ contextSequence, chatWrapper: withoutStopTriggers(normal.chatWrapper) }),
        });
      }
      this.loaded = { runtime, llama, model, context, chats, contextSize: wanted };
      this.free.push(...chats);
      this.contextSize = wanted;
      this.status = 'ready';
      log(
        `INFO Model loading took ${((Date.now() - started) / 1000).toFixed(2)} seconds: ${this.servedName}, chat template ${chats[0]!.normal.chatWrapper.wrapperName}, ` +
          `context ${wanted} x ${this.parallel} sequence(s), ${threads} thread(s), queue ${this.maxQueue}`,
      );
      log(`INFO Application startup complete: serving ${this.servedName}`);
    } catch (err) {
      this.status = 'failed';
      const failure = asLoadError(err);
      // A stop asked for during the load is no load failure: no ERROR line for up's diagnosis to read.
      if (err instanceof StoppedWhileLoading) log(`INFO ${failure.message}`);
      else log(`ERROR ${failure.message}`);
      throw failure;
    }
  }

  /** Serves one request, counted as in flight until its handling ends. */
  serve(req: IncomingMessage, res: ServerResponse): void {
    const work = this.handle(req, res).catch((err: unknown) => {
      this.options.log(`ERROR request failed: ${(err as Error).message}`);
      if (!res.headersSent) sendJson(res, 500, errorBody(500, `engine error: ${(err as Error).message}`));
      else res.destroy();
    });
    this.active.add(work);
    void work.finally(() => {
      this.active.delete(work);
      if (this.active.size === 0) for (const notify of [...this.idleWaiters]) notify();
    });
  }

  /** From now on every new request is answered 503; returns how many are in flight. */
  beginDrain(): number {
    this.closed = true;
    return this.active.size;
  }

  /** 'idle' once nothing is in flight; 'timeout' when ms pass first; 'ended' when endDrainWait() is called first. */
  whenIdle(ms: number): Promise<'idle' | 'timeout' | 'ended'> {
    if (this.active.size === 0) return Promise.resolve('idle');
    if (ms <= 0) return Promise.resolve('timeout');
    // The executor runs at once: endDrainWait() works from the moment whenIdle() returns.
    return new Promise((resolve) => {
      const finish = (how: 'idle' | 'timeout' | 'ended') => {
        clearTimeout(timer);
        this.idleWaiters.delete(onIdle);
        if (this.drainWaitEnd === onEnd) this.drainWaitEnd = undefined;
        resolve(how);
      };
      const onIdle = () => finish('idle');
      const onEnd = () => finish('ended');
      const timer = setTimeout(() => finish('timeout'), ms);
      this.idleWaiters.add(onIdle);
      this.drainWaitEnd = onEnd;
    });
  }

  endDrainWait(): void {
    this.drainWaitEnd?.();
  }

  /** Stops every request in flight (and any still reading its body) with a 503; returns how many were stopped. */
  stopAll(): number {
    this.stopReason = new EngineStopping('The engine is shutting down: this request was stopped before it finished. Retry it.');
    for (const controller of this.inFlight) controller.abort(this.stopReason);
    return this.active.size;
  }

  async dispose(): Promise<void> {
    const loaded = this.loaded;
    this.loaded = undefined;
    if (!loaded) return;
    for (const chat of loaded.chats) {
      chat.ignoringEos.dispose();
      chat.normal.dispose();
    }
    await loaded.context.dispose();
    await loaded.model.dispose();
    await loaded.llama.dispose();
  }

  private eogBan(): TokenBiasLike {
    const loaded = this.loaded!;
    loaded.eogBan ??= banTokens(loaded.runtime, loaded.model, endOfGenerationTokens(loaded.model));
    return loaded.eogBan;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    // First, as vLLM's middleware: a foreign Host (DNS rebinding) or a missing key learns nothing, not even the routes.
    const refused = this.access({ method, path, host: req.headers.host, authorization: req.headers.authorization });
    if (refused) return sendJson(res, refused.status, refused.body);
    if (this.closed) {
      // Draining: a request on a connection opened before the stop. Tell it to go elsewhere, and close.
      res.shouldKeepAlive = false;
      return sendJson(res, 503, errorBody(503, 'The engine is shutting down.'), { 'retry-after': '1', connection: 'close' });
    }
    if (this.status !== 'ready') {
      if (path === '/health') {
        res.writeHead(503, { 'content-length': 0 });
        res.end();
      } else
        sendJson(res, 503, errorBody(503, this.status === 'failed' ? 'The model failed to load.' : 'The model is still loading.'), {
          'retry-after': '1',
        });
      return;
    }
    const route = ROUTES[path];
    if (!route) return sendJson(res, 404, errorBody(404, `Not Found: ${method} ${path}`));
    if (route !== method)
      return sendJson(res, 405, errorBody(405, `Method Not Allowed: ${method} ${path} (use ${route})`), { allow: route });
    if (path === '/health') {
      res.writeHead(200, { 'content-length': 0 });
      res.end();
    } else if (path === '/v1/models') this.models(res);
    else if (path === '/metrics') this.serveMetrics(res);
    else await this.chat(req, res);
  }

  private models(res: ServerResponse): void {
    sendJson(res, 200, {
      object: 'list',
      data: [
        {
          id: this.servedName,
          object: 'model',
          created: Math.floor(Date.now() / 1000),
          owned_by: 'cs-llm',
          root: this.options.modelPath,
          parent: null,
          max_model_len: this.contextSize,
          permission: [],
        },
      ],
    });
  }

  private serveMetrics(res: ServerResponse): void {
    const capacity = (this.contextSize ?? 1) * this.parallel;
    const held = [...this.kvTokens.values()].reduce((a, b) => a + b, 0);
    const text = this.metrics.render({
      running: this.slots.running,
      waiting: this.slots.waiting,
      kvCacheUsage: Math.min(1, held / capacity),
    });
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const arrived = Date.now();
    const loaded = this.loaded!;
    const text = await readBody(req).catch(() => undefined);
    if (text === undefined)
      return sendProblem(res, { status: 413, message: `The request body is larger than ${MAX_BODY_BYTES} bytes.`, param: null });
    const json = parseJsonBody(text);
    if (!json.ok) return sendProblem(res, json.problem);
    const parsed = parseChatRequest(json.value, [this.servedName]);
    if (!parsed.ok) return sendProblem(res, parsed.problem);
    const request = parsed.value;
    const ignoreEos = ignoreEosProblem(request);
    if (ignoreEos) return sendProblem(res, ignoreEos);
    const sampling = samplingOf(json.value);
    if (!sampling.ok) return sendProblem(res, sampling.problem);
    if (request.tools && request.tools.length > 0 && request.toolChoice !== 'none') {
      return sendProblem(res, {
        status: 400,
        message: 'The cpu engine does not support tool calls: send the request without "tools", or use the vllm engine.',
        param: 'tools',
      });
    }
    const history = toChatHistory(request.messages);
    const promptTokens = loaded.chats[0]!.normal.chatWrapper.generateContextState({ chatHistory: history }).contextText.tokenize(
      loaded.model.tokenizer,
    ).length;
    const tooLong = contextProblem(promptTokens, request.maxTokens, loaded.contextSize, 'messages');
    if (tooLong) return sendProblem(res, tooLong);
    // Bounded queue: every sequence busy and the queue full -> tell the client when to come back.
    if (this.slots.running >= this.parallel && this.slots.waiting >= this.maxQueue) {
      this.counts.rejected++;
      return sendJson(
        res,
        429,
        errorBody(
          429,
          `The engine is busy: ${this.slots.running} generating and ${this.slots.waiting} waiting (queue limit ${this.maxQueue}). Retry later.`,
        ),
        { 'retry-after': '1' },
      );
    }
    await this.generate(res, request, history, promptTokens, sampling.value, arrived);
  }

  private async generate(
    res: ServerResponse,
    request: ChatRequest,
    history: ReturnType<typeof toChatHistory>,
    promptTokens: number,
    sampling: Sampling,
    arrived: number,
  ): Promise<void> {
    const controller = new AbortController();
    const { signal } = controller;
    this.inFlight.add(controller);
    // Its body was still arriving when the drain timed out.
    if (this.stopReason) controller.abort(this.stopReason);
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new ClientGone('client went away'));
    };
    res.once('close', onClose);
    let release: (() => void) | undefined;
    let chats: SequenceChats | undefined;
    const id = `chatcmpl-${randomUUID().replace(/-/g, '')}`;
    const created = Math.floor(arrived / 1000);
    const head = { id, object: 'chat.completion.chunk', created, model: request.model };
    const chunk = (delta: object, finish: string | null) =>
      `data: ${JSON.stringify({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] })}\n\n`;
    try {
      release = await this.slots.acquire(signal);
      chats = this.free.pop()!;
      const chat = request.ignoreEos ? chats.ignoringEos : chats.normal;
      this.metrics.promptTokens += promptTokens;
      this.kvTokens.set(controller, promptTokens);
      let completionTokens = 0;
      let firstToken = true;
      let pendingWrite: Promise<unknown> | undefined;
      // Stream coalescing: the first piece goes out at once (time to first token); later pieces that arrive
      // within streamIntervalMs share one chunk. At real-model speeds (tens of tokens/s) every token still
      // gets its own chunk; at thousands of tokens/s this saves the client and the daemon most per-chunk work.
      let unsent = '';
      let sentAny = false;
      let flushTimer: NodeJS.Timeout | undefined;
      const send = (piece: string) => {
        // Settles on abort as well, so an abort while the socket is full leaves no unhandled rejection.
        if (!res.write(chunk({ content: piece }, null)))
          pendingWrite ??= once(res, 'drain', { signal })
            .then(
              () => undefined,
              () => undefined,
            )
            .finally(() => (pendingWrite = undefined));
      };
      const flush = () => {
        if (flushTimer) clearTimeout(flushTimer);
        flushTimer = undefined;
        if (unsent === '' || signal.aborted) return;
        const piece = unsent;
        unsent = '';
        send(piece);
      };
      // Before the stream's head: a failure here is still a plain error response.
      const tokenBias = request.ignoreEos ? this.eogBan() : undefined;
      if (request.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.write(chunk({ role: 'assistant', content: '' }, null));
      }
      const generateOptions: GenerateOptions = {
        maxTokens: request.maxTokens ?? this.contextSize! - promptTokens,
        temperature: sampling.temperature,
        topP: sampling.topP,
        seed: sampling.seed ?? randomInt(0, 2 ** 31),
        customStopTriggers: request.stop.length > 0 ? request.stop : undefined,
        tokenBias,
        signal,
        onToken: (tokens) => {
          completionTokens += tokens.length;
          this.metrics.generationTokens += tokens.length;
          this.kvTokens.set(controller, promptTokens + completionTokens);
          if (firstToken && tokens.length > 0) {
            firstToken = false;
            this.metrics.observeTimeToFirstToken((Date.now() - arrived) / 1000);
          }
        },
        onTextChunk: request.stream
          ? (piece) => {
              if (piece === '' || signal.aborted) return;
              if (!sentAny || this.streamIntervalMs === 0) {
                sentAny = true;
                send(piece);
                return;
              }
              unsent += piece;
              flushTimer ??= setTimeout(flush, this.streamIntervalMs);
            }
          : undefined,
      };
      const result = await chat.generateResponse(history, generateOptions).finally(() => flush());
      if (signal.aborted) throw signal.reason;
      const finishReason = result.metadata.stopReason === 'maxTokens' ? 'length' : 'stop';
      const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
      if (request.stream) {
        if (pendingWrite) await pendingWrite;
        if (signal.aborted) throw signal.reason;
        res.write(chunk({}, finishReason));
        if (request.includeUsage) res.write(`data: ${JSON.stringify({ ...head, choices: [], usage })}\n\n`);
        res.end('data: [DONE]\n\n');
      } else {
        sendJson(res, 200, {
          id,
          object: 'chat.completion',
          created,
          model: request.model,
          choices: [{ index: 0, message: { role: 'assistant', content: result.response }, logprobs: null, finish_reason: finishReason }],
          usage,
        });
      }
      this.counts.completed++;
      this.metrics.finished[finishReason]++;
      this.metrics.observeEndToEnd((Date.now() - arrived) / 1000);
    } catch (err) {
      if (!signal.aborted) throw err;
      this.counts.aborted++;
      this.metrics.finished.abort++;
      const reason: unknown = signal.reason;
      if (reason instanceof EngineStopping && !res.writableEnded && !res.destroyed) {
        // Stopped by the engine, not by the client: say so, rather than cutting the connection.
        if (res.headersSent) res.end(`data: ${JSON.stringify(errorBody(503, reason.message))}\n\n`);
        else sendJson(res, 503, errorBody(503, reason.message), { 'retry-after': '1', connection: 'close' });
      } else if (!res.writableEnded) res.destroy();
    } finally {
      res.off('close', onClose);
      this.inFlight.delete(controller);
      this.kvTokens.delete(controller);
      if (chats) this.free.push(chats);
      release?.();
    }
  }
}

const ROUTES: Record<string, string> = {
  '/health': 'GET',
  '/v1/models': 'GET',
  '/metrics': 'GET',
  '/v1/chat/completions': 'POST',
};

interface Sampling {
  temperature: number;
  topP?: number;
  seed?: number;
}

/** temperature, top_p and seed, checked like vLLM does. */
export function samplingOf(body: Record<string, unknown>): { ok: true; value: Sampling } | { ok: false; problem: RequestProblem } {
  const bad = (message: string, param: string) => ({ ok: false as const, problem: { status: 400, message, param } });
  const { temperature, top_p: topP, seed } = body;
  if (temperature !== undefined && temperature !== null && (typeof temperature !== 'number' || temperature < 0 || temperature > 2))
    return bad('temperature must be a number from 0 to 2.', 'temperature');
  if (topP !== undefined && topP !== null && (typeof topP !== 'number' || topP <= 0 || topP > 1))
    return bad('top_p must be a number in (0, 1].', 'top_p');
  if (seed !== undefined && seed !== null && (typeof seed !== 'number' || !Number.isInteger(seed)))
    return bad('seed must be an integer.', 'seed');
  return {
    ok: true,
    value: {
      temperature: typeof temperature === 'number' ? temperature : DEFAULT_TEMPERATURE,
      topP: typeof topP === 'number' ? topP : undefined,
      seed: typeof seed === 'number' ? Math.abs(seed) % 2 ** 31 : undefined,
    },
  };
}

function asLoadError(err: unknown): CpuEngineLoadError {
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
