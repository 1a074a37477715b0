/*
 * The CPU engine: an OpenAI-compatible HTTP server (node:http) around llama.cpp through node-llama-cpp,
 * answering in vLLM's wire format, as the simulator does: GET /health (503 while the model loads),
 * GET /v1/models, POST /v1/chat/completions (streaming or not), GET /metrics with vLLM's names.
 * What it serves is in engine-state.ts; this module listens and stops.
 * Importable by tests (`startCpuEngine({modelPath, port: 0, threads: 1})`) and run by main.ts.
 * Stopping drains: close(drainTimeoutMs) refuses new requests (503, listener closed), lets the ones in flight
 * finish, and only after the timeout stops them with an error the client can read (503, or an SSE error event).
 */

import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { EngineState, type CpuEngineStats } from './engine-state.js';
import type { CpuEngineOptions } from './options.js';

export type { CpuEngineOptions } from './options.js';
export type { CpuEngineStats } from './engine-state.js';
export { CpuEngineLoadError } from './load.js';

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

export class CpuEngineListenError extends Error {}

/** After the drain timeout stops what is left: how long aborted generations get to unwind before sockets are cut. */
const ABORT_GRACE_MS = 5000;

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
