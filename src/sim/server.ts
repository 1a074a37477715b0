/*
 * The vLLM-compatible simulator: a real HTTP server (node:http only) that answers like vLLM's
 * OpenAI-compatible server with a model loaded, with knobs for timing, concurrency and injected faults.
 * Importable by tests (`startSimulator({port: 0})`) and run by main.ts and `cs-llm sim`.
 */

import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { answerFault, createFaultPicker, type FaultKind } from './faults.js';
import { RateLimits, sendRateLimited } from './limits.js';
import { accessLine, SIM_VERSION, type LoadedMemory } from './logs.js';
import { BLOCK_SIZE } from './memory.js';
import { startUp } from './startup.js';
import { simulateLoading } from './loading.js';
import { resolveSimulatorOptions, type ResolvedSimulatorOptions, type SimulatorOptions } from './options.js';
import { planRequest } from './plans.js';
import type { GenerationPlan } from './wire.js';
import { createAccessGuard, type AccessGuard } from '../openai-server/access.js';
import { MAX_BODY_BYTES, readBody } from '../openai-server/body.js';
import { errorBody } from '../openai-server/errors.js';
import { VllmMetrics } from '../openai-server/metrics.js';
import { parseJsonBody } from '../openai-server/requests.js';
import { sendEmpty, sendJson, sendProblem } from '../openai-server/respond.js';
import { SequenceSlots } from '../openai-server/slots.js';

export type { SimulatorOptions } from './options.js';
export { parseSimulatorArgs, resolveSimulatorOptions, SimOptionsError, simulatorFlagsHelp } from './options.js';
export { SimulatedCrash } from './startup.js';

export interface SimulatorStats {
  loaded: boolean;
  /** Completion requests received (chat and legacy), including ones answered with a fault. */
  requests: number;
  completed: number;
  /** Requests whose client went away before the reply ended. */
  aborted: number;
  running: number;
  waiting: number;
  /** Requests accepted by the hang fault and still open. */
  hanging: number;
  promptTokens: number;
  generationTokens: number;
  faults: Record<FaultKind, number>;
  /** Requests refused for going over --rpm-limit / --tpm-limit (not counted against the limits). */
  rateLimited: number;
}

export interface RunningSimulator {
  /** http://127.0.0.1:PORT (loopback even when bound to a wildcard address). */
  url: string;
  port: number;
  close(): Promise<void>;
  stats(): SimulatorStats;
}

/** The port could not be bound. */
export class SimulatorListenError extends Error {
  constructor(
    message: string,
    readonly code: string | undefined,
  ) {
    super(message);
    this.name = 'SimulatorListenError';
  }
}

export async function startSimulator(input: SimulatorOptions = {}, ignoredFlags: string[] = []): Promise<RunningSimulator> {
  const options = resolveSimulatorOptions(input);
  const { log } = options;
  const memory = startUp(options, ignoredFlags);

  const state = new SimulatorState(options, memory);
  const server = createServer((req, res) => {
    state.handle(req, res).catch((err: unknown) => {
      // A bug in the simulator: answer 500 rather than leave the client hanging.
      if (!res.headersSent) sendJson(res, 500, errorBody(500, `simulator error: ${(err as Error).message}`));
      else res.destroy();
    });
  });
  const sockets = new Set<Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      const why = err.code === 'EADDRINUSE' ? 'the address is already in use' : err.message;
      reject(new SimulatorListenError(`Cannot listen on ${options.host}:${options.port}: ${why}`, err.code));
    });
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : options.port;
  const url = `http://${urlHost(options.host)}:${port}`;
  const advertised = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  state.startLoading(advertised);

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    stats: () => state.stats(),
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        state.shutdown();
        server.close(() => resolve());
        // Hung requests and keep-alive connections would hold close() open forever.
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::' || host === '') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

class AbortedByClient extends Error {}

class SimulatorState {
  private loaded = false;
  private readonly loadingTimers: NodeJS.Timeout[] = [];
  private readonly metrics: VllmMetrics;
  private readonly slots: SequenceSlots;
  private readonly pickFault: () => FaultKind | undefined;
  /** Every in-flight generation, so shutdown can stop their timers. */
  private readonly inFlight = new Set<AbortController>();
  /** Tokens (prompt + generated) held by each running sequence, for the KV cache gauge. */
  private readonly kvTokens = new Map<AbortController, number>();
  private readonly hanging = new Set<ServerResponse>();
  private readonly counts = { requests: 0, completed: 0, aborted: 0, rateLimited: 0 };
  private readonly limits: RateLimits;
  private readonly faults: Record<FaultKind, number> = { fail429: 0, fail503: 0, fail500: 0, hang: 0, dieMidStream: 0 };
  private readonly routes: Record<string, Record<string, Handler>>;
  private readonly access: AccessGuard;

  constructor(
    private readonly options: ResolvedSimulatorOptions,
    private readonly memory: LoadedMemory,
  ) {
    this.access = createAccessGuard(options);
    this.metrics = new VllmMetrics(options.servedModelNames[0]!);
    // vLLM's vllm:cache_config_info: its CacheConfig as labels, num_gpu_blocks among them.
    this.metrics.cacheConfig = {
      block_size: String(BLOCK_SIZE),
      cache_dtype: 'auto',
      gpu_memory_utilization: String(options.gpuMemoryUtilization),
      num_gpu_blocks: String(Math.floor(memory.kvCacheTokens / BLOCK_SIZE)),
    };
    this.slots = new SequenceSlots(options.maxNumSeqs);
    this.limits = new RateLimits({ rpm: options.rpmLimit, tpm: options.tpmLimit, windowMs: options.limitWindowMs });
    this.pickFault = createFaultPicker(
      {
        fail429: options.fail429Rate,
        fail503: options.fail503Rate,
        fail500: options.fail500Rate,
        hang: options.hangRate,
        dieMidStream: options.dieMidStreamRate,
      },
      options.seed,
    );
    this.routes = {
      '/health': { GET: (_req, res) => this.health(res) },
      '/ping': { GET: (_req, res) => this.health(res) },
      '/version': { GET: (_req, res) => sendJson(res, 200, { version: SIM_VERSION }) },
      '/metrics': { GET: (_req, res) => this.serveMetrics(res) },
      '/v1/models': { GET: (_req, res) => this.models(res) },
      '/v1/chat/completions': { POST: (req, res) => this.completion(req, res, 'chat') },
      '/v1/completions': { POST: (req, res) => this.completion(req, res, 'text') },
    };
  }

  startLoading(url: string): void {
    this.loadingTimers.push(
      ...simulateLoading(this.options, this.memory, url, () => {
        this.loaded = true;
      }),
    );
  }

  shutdown(): void {
    for (const timer of this.loadingTimers) clearTimeout(timer);
    for (const controller of this.inFlight) controller.abort(new AbortedByClient('simulator closed'));
    for (const res of this.hanging) res.destroy();
    this.hanging.clear();
  }

  stats(): SimulatorStats {
    return {
      loaded: this.loaded,
      ...this.counts,
      running: this.slots.running,
      waiting: this.slots.waiting,
      hanging: this.hanging.size,
      promptTokens: this.metrics.promptTokens,
      generationTokens: this.metrics.generationTokens,
      faults: { ...this.faults },
    };
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    if (this.options.accessLog) {
      res.once('finish', () =>
        this.options.log(
          accessLine(`${req.socket.remoteAddress ?? '-'}:${req.socket.remotePort ?? 0}`, method, req.url ?? '/', res.statusCode),
        ),
      );
    }

    // Before anything else, as vLLM's middleware: a foreign Host or a missing key learns nothing, not even the routes.
    const refused = this.access({ method, path, host: req.headers.host, authorization: req.headers.authorization });
    if (refused) return sendJson(res, refused.status, refused.body);

    if (!this.loaded) {
      // vLLM is not serving yet; /health is the endpoint readiness checks poll.
      if (path === '/health') sendEmpty(res, 503);
      else sendJson(res, 503, errorBody(503, 'The model is still loading.'), { 'retry-after': '1' });
      return;
    }

    const route = this.routes[path];
    if (!route) return sendJson(res, 404, errorBody(404, `Not Found: ${method} ${path}`));
    const handler = route[method];
    if (!handler) {
      return sendJson(res, 405, errorBody(405, `Method Not Allowed: ${method} ${path} (use ${Object.keys(route).join(', ')})`), {
        allow: Object.keys(route).join(', '),
      });
    }
    await handler(req, res);
  }

  private health(res: ServerResponse): void {
    sendEmpty(res, 200);
  }

  private models(res: ServerResponse): void {
    const created = Math.floor(Date.now() / 1000);
    sendJson(res, 200, {
      object: 'list',
      data: this.options.servedModelNames.map((name) => ({
        id: name,
        object: 'model',
        created,
        owned_by: 'vllm',
        root: this.options.model,
        parent: null,
        max_model_len: this.options.maxModelLen,
        permission: [],
      })),
    });
  }

  private serveMetrics(res: ServerResponse): void {
    const capacity = this.memory.kvCacheTokens;
    const held = [...this.kvTokens.values()].reduce((a, b) => a + b, 0);
    const text = this.metrics.render({
      running: this.slots.running,
      waiting: this.slots.waiting,
      kvCacheUsage: Math.min(1, held / capacity),
    });
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async completion(req: IncomingMessage, res: ServerResponse, kind: 'chat' | 'text'): Promise<void> {
    const arrived = Date.now();
    this.counts.requests++;
    const text = await readBody(req).catch(() => undefined);
    if (text === undefined)
      return sendProblem(res, { status: 413, message: `The request body is larger than ${MAX_BODY_BYTES} bytes.`, param: null });
    const json = parseJsonBody(text);
    if (!json.ok) return sendProblem(res, json.problem);

    const planned = planRequest(json.value, kind, this.options, Math.floor(arrived / 1000));
    if (!planned.ok) return sendProblem(res, planned.problem);
    const { plan, stream, includeUsage } = planned;
    // A provider's limits come first, before any fault (a refused request draws none).
    const overMs = this.limits.active ? this.limits.admit(plan.promptTokens + plan.stepTokens.reduce((a, b) => a + b, 0)) : null;
    if (overMs !== null) {
      this.counts.rateLimited++;
      return sendRateLimited(res, overMs, this.limits.options);
    }
    const fault = this.pickFault();
    if (fault) this.faults[fault]++;
    if (answerFault(fault, res, this.hanging)) return;
    await this.generate(res, plan, { stream, includeUsage, arrived, dieMidStream: fault === 'dieMidStream' });
  }

  /** Holds a sequence slot, paces the steps, and writes the reply; stops at once when the client goes away. */
  private async generate(
    res: ServerResponse,
    plan: GenerationPlan,
    how: { stream: boolean; includeUsage: boolean; arrived: number; dieMidStream: boolean },
  ): Promise<void> {
    const controller = new AbortController();
    const { signal } = controller;
    this.inFlight.add(controller);
    const onClose = () => {
      if (!res.writableFinished) controller.abort(new AbortedByClient('client went away'));
    };
    res.once('close', onClose);
    let release: (() => void) | undefined;
    const steps = plan.stepTokens.length;
    // Die after half the reply (at least the first step when streaming, so the client sees some chunks).
    const dieAfter = how.dieMidStream ? Math.max(how.stream ? 1 : 0, Math.floor(steps / 2)) : Infinity;
    try {
      release = await this.slots.acquire(signal);
      const started = Date.now();
      this.metrics.promptTokens += plan.promptTokens;
      this.kvTokens.set(controller, plan.promptTokens);
      const { ttftMs, tokensPerSecond } = this.options;
      const waitForStep = async (i: number) => {
        const due = started + ttftMs + (tokensPerSecond > 0 ? (i * 1000) / tokensPerSecond : 0);
        const delay = due - Date.now();
        if (delay > 0) await sleep(delay, undefined, { signal });
        else if (signal.aborted) throw signal.reason;
      };
      const generated = (i: number) => {
        const tokens = plan.stepTokens[i]!;
        this.metrics.generationTokens += tokens;
        this.kvTokens.set(controller, (this.kvTokens.get(controller) ?? 0) + tokens);
        if (i === 0) this.metrics.observeTimeToFirstToken((Date.now() - how.arrived) / 1000);
      };

      if (how.stream) {
        res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive' });
        res.flushHeaders();
        for (let i = 0; i < steps; i++) {
          if (i >= dieAfter) return await this.die(res, controller);
          await waitForStep(i);
          generated(i);
          const flushed = plan
            .chunksForStep(i)
            .map((chunk) => res.write(`data: ${JSON.stringify(chunk)}\n\n`))
            .every(Boolean);
          // A slow reader: wait for it rather than buffer the whole reply in memory.
          if (!flushed) await once(res, 'drain', { signal });
        }
        for (const chunk of plan.finalChunks(how.includeUsage)) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
        res.end('data: [DONE]\n\n');
      } else {
        for (let i = 0; i < steps; i++) {
          if (i >= dieAfter) return await this.die(res, controller);
          await waitForStep(i);
          generated(i);
        }
        sendJson(res, 200, plan.body());
      }
      this.counts.completed++;
      this.metrics.finished[plan.finishReason === 'length' ? 'length' : 'stop']++;
      this.metrics.observeEndToEnd((Date.now() - how.arrived) / 1000);
    } catch (err) {
      if (!(err instanceof AbortedByClient) && !signal.aborted) throw err;
      this.counts.aborted++;
      this.metrics.finished.abort++;
    } finally {
      res.off('close', onClose);
      this.inFlight.delete(controller);
      this.kvTokens.delete(controller);
      release?.();
    }
  }

  /** The die-mid-stream fault: drop the connection without finishing the reply, after what was sent got out. */
  private async die(res: ServerResponse, controller: AbortController): Promise<void> {
    controller.abort(new AbortedByClient('simulated connection drop'));
    this.counts.aborted++;
    this.metrics.finished.abort++;
    // node:http corks the socket until the next tick; destroying before that would drop the chunks too.
    await new Promise((resolve) => setImmediate(resolve));
    const socket = res.socket;
    if (socket && socket.writableLength > 0 && !socket.destroyed) {
      await new Promise((resolve) => {
        socket.once('drain', resolve);
        socket.once('close', resolve);
      });
    }
    (socket ?? res).destroy();
  }
}
