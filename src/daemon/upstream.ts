import type { IncomingHttpHeaders } from 'node:http';
import { createRequire } from 'node:module';
import type { Readable } from 'node:stream';
import type { Dispatcher, Pool as UndiciPool } from 'undici';
import { ApiError } from './api-error.js';
import type { ClientAbort } from './client-abort.js';

// undici's Pool and its request() from their own files: the package's index also loads fetch, WebSocket,
// the cache, the mocks and the proxy agents (110 modules), about 9 MiB of the daemon's RSS that the upstream
// never uses (#21). undici has no "exports" map, and its version is pinned in package.json; request() is
// what the index puts on Dispatcher.prototype, called with the pool as `this`.
const require = createRequire(import.meta.url);
const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
const poolRequest = require('undici/lib/api/api-request.js') as (
  this: Dispatcher,
  options: Dispatcher.RequestOptions,
) => Promise<Dispatcher.ResponseData>;

export interface UpstreamResponse {
  statusCode: number;
  headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>;
  body: Readable & AsyncIterable<Buffer>;
}

export interface UpstreamRequest {
  method: 'GET' | 'POST';
  /** Path under the upstream's base, e.g. /v1/chat/completions. */
  path: string;
  headers?: Record<string, string>;
  body?: Buffer | string;
  /** An AbortSignal, or a ClientAbort (cheaper: see client-abort.ts); undici takes either. */
  signal?: AbortSignal | ClientAbort;
  /** Overrides the configured timeout (for readiness probes). */
  timeoutMs?: number;
}

/** The engine behind the daemon (vLLM or the simulator), behind one small interface so tests can swap it. */
export interface Upstream {
  /** The base URL, for logs and errors. */
  readonly url: string;
  request(request: UpstreamRequest): Promise<UpstreamResponse>;
  close(): Promise<void>;
}

export interface PooledUpstreamOptions {
  url: string;
  timeoutMs: number;
  connections: number;
  /** Longest silence between chunks once the reply started; default timeoutMs. */
  idleTimeoutMs?: number | undefined;
  /** Sent as Authorization: Bearer to the upstream (the client's own key never is). */
  apiKey?: string | undefined;
}

/**
 * The upstream through one undici Pool: keep-alive connections reused across requests, a headers timeout
 * (time to the first byte of the reply) and a body timeout (longest silence between chunks) both bounded by
 * the configured upstream timeout.
 */
export function createPooledUpstream(options: PooledUpstreamOptions): Upstream {
  const url = new URL(options.url);
  // Accept http://host:8000, http://host:8000/ and http://host:8000/v1 alike.
  const basePath = url.pathname.replace(/\/+$/, '').replace(/\/v1$/, '');
  const pool = new Pool(url.origin, {
    connections: options.connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    headersTimeout: options.timeoutMs,
    bodyTimeout: options.idleTimeoutMs ?? options.timeoutMs,
    connectTimeout: Math.min(options.timeoutMs, 10_000),
  });
  const auth = options.apiKey ? `Bearer ${options.apiKey}` : null;
  return {
    url: options.url,
    async request(r) {
      const headers: Record<string, string> = { ...r.headers };
      if (auth) headers.authorization = auth;
      const response = await poolRequest.call(pool, {
        origin: url.origin,
        path: basePath + r.path,
        method: r.method,
        headers,
        body: r.body ?? null,
        signal: r.signal ?? null,
        ...(r.timeoutMs !== undefined ? { headersTimeout: r.timeoutMs, bodyTimeout: r.timeoutMs } : {}),
      });
      return response as unknown as UpstreamResponse;
    },
    async close() {
      await pool.close().catch(() => pool.destroy());
    },
  };
}

/** An upstream's whole reply grew past the limit (daemon.upstreamReplyLimitBytes): refused, not buffered. */
export class UpstreamReplyTooLargeError extends Error {
  constructor(readonly limitBytes: number) {
    super(`the upstream's reply is larger than ${limitBytes} bytes`);
    this.name = 'UpstreamReplyTooLargeError';
  }
}

/**
 * The whole body as one Buffer, from 'data'/'end' events: cheaper than an async iterator (no promise per
 * chunk) on the non-streaming path, where every microsecond is overhead. Past limitBytes it is destroyed and
 * the promise rejects with UpstreamReplyTooLargeError.
 */
export function collectBody(body: Readable, limitBytes = Infinity): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    body.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limitBytes) {
        chunks.length = 0;
        reject(new UpstreamReplyTooLargeError(limitBytes));
        body.destroy();
        return;
      }
      chunks.push(chunk);
    });
    let ended = false;
    body.once('end', () => {
      ended = true;
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    body.once('error', reject);
    // Destroyed without an error (an abort can do that): settle anyway, nothing may wait forever.
    body.once('close', () => {
      if (!ended) reject(new Error('the upstream body closed before it ended'));
    });
  });
}

function errorCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === 'object'; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return '';
}

export function isTimeout(err: unknown): boolean {
  const code = errorCode(err);
  return (
    code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT'
  );
}

/** 504 for a timeout, 502 for anything else that kept the upstream from answering. */
export function upstreamFailure(err: unknown, upstreamUrl: string, timeoutMs: number): ApiError {
  if (err instanceof UpstreamReplyTooLargeError) {
    return new ApiError(
      502,
      `the upstream engine at ${upstreamUrl} sent a reply larger than ${err.limitBytes} bytes (daemon.upstreamReplyLimitBytes): it was cut there and nothing of it was stored`,
      {
        code: 'upstream_reply_too_large',
      },
    );
  }
  if (errorCode(err) === 'UND_ERR_BODY_TIMEOUT') {
    return new ApiError(504, `the upstream engine at ${upstreamUrl} went silent in the middle of its reply (idle timeout)`, {
      code: 'upstream_idle_timeout',
    });
  }
  if (isTimeout(err)) {
    return new ApiError(504, `the upstream engine at ${upstreamUrl} did not answer within ${timeoutMs} ms`, {
      code: 'upstream_timeout',
    });
  }
  const code = errorCode(err);
  const why = code === 'ECONNREFUSED' ? 'refused the connection' : code ? `failed (${code})` : 'failed';
  return new ApiError(502, `the upstream engine at ${upstreamUrl} ${why}; is it running? (cs-llm status)`, {
    code: 'upstream_unavailable',
  });
}

/**
 * The longest silence allowed between chunks of a streamed reply. The daemon keeps its own timer because
 * undici's bodyTimeout was seen not to fire between slow stream chunks here. refresh() runs once per chunk,
 * so it only counts: re-arming a timer per chunk cost more than the rest of the relay. The timer ticks every
 * ms/2 and fires after two ticks without a chunk, so a silence ends the stream after between ms and 1.5 ms.
 * While the relay holds the body back for a client whose socket is full (pause() to resume()), no chunk can
 * arrive: that time is the client's, never counted as the upstream's silence.
 */
export class IdleWatch {
  private chunks = 0;
  private seenAtTick = 0;
  private quietTicks = 0;
  private paused = false;
  private readonly timer: NodeJS.Timeout;

  constructor(body: Readable, ms: number) {
    const tickMs = Math.max(1, Math.ceil(ms / 2));
    this.timer = setInterval(() => {
      if (this.paused || this.chunks !== this.seenAtTick) {
        this.seenAtTick = this.chunks;
        this.quietTicks = 0;
        return;
      }
      if (++this.quietTicks < 2) return;
      clearInterval(this.timer);
      body.destroy(Object.assign(new Error(`no data from the upstream for ${ms} ms`), { code: 'UND_ERR_BODY_TIMEOUT' }));
    }, tickMs);
  }

  refresh(): void {
    this.chunks++;
  }

  /** The body is held back for the client: silence from here on is not the upstream's. */
  pause(): void {
    this.paused = true;
  }

  /** The body flows again: the upstream has a whole idle period from now. */
  resume(): void {
    this.paused = false;
    this.chunks++;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export function idleWatch(body: Readable, ms: number): IdleWatch {
  return new IdleWatch(body, ms);
}
