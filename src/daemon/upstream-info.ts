import type { Upstream } from './upstream.js';

export interface UpstreamModel {
  id: string;
  /** vLLM's max_model_len: the context the window must fit in. */
  contextTokens: number | null;
}

/**
 * What the daemon learns from the upstream's /v1/models: the served model (filled in when a client omits
 * `model`) and its context length (bounds the history window). Fetched once and cached; after a failure
 * the next request tries again, at most every retryMs, and never waits more than timeoutMs for it.
 */
export class UpstreamInfo {
  private cached: UpstreamModel | null = null;
  private inflight: Promise<UpstreamModel | null> | null = null;
  private lastFailure = 0;

  constructor(
    private readonly upstream: Upstream,
    private readonly options: { retryMs?: number; timeoutMs?: number } = {},
  ) {}

  /** The cached model, without waiting (null until known). */
  get known(): UpstreamModel | null {
    return this.cached;
  }

  async get(): Promise<UpstreamModel | null> {
    if (this.cached) return this.cached;
    if (this.inflight) return this.inflight;
    if (Date.now() - this.lastFailure < (this.options.retryMs ?? 5000)) return null;
    this.inflight = this.fetch().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  private async fetch(): Promise<UpstreamModel | null> {
    try {
      const res = await this.upstream.request({ method: 'GET', path: '/v1/models', timeoutMs: this.options.timeoutMs ?? 3000 });
      const text = await readAll(res.body);
      if (res.statusCode !== 200) throw new Error(`status ${res.statusCode}`);
      const first = (JSON.parse(text) as { data?: Array<{ id?: unknown; max_model_len?: unknown }> }).data?.[0];
      if (!first || typeof first.id !== 'string') throw new Error('no model listed');
      this.cached = { id: first.id, contextTokens: typeof first.max_model_len === 'number' ? first.max_model_len : null };
      return this.cached;
    } catch {
      this.lastFailure = Date.now();
      return null;
    }
  }
}

/** An engine's model list or metrics page, which are kilobytes: past this the engine is broken, not verbose. */
const SMALL_REPLY_LIMIT_BYTES = 8 * 1024 * 1024;

/** A small reply read whole; throws past limitBytes rather than buffering whatever the engine sends. */
export async function readAll(body: AsyncIterable<Buffer>, limitBytes = SMALL_REPLY_LIMIT_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limitBytes) throw new Error(`the reply is larger than ${limitBytes} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
