/*
 * Shadow traffic: a share of completed chat requests is sent again, after the client's reply has ended, to
 * a shadow upstream, and the two answers are compared (latency, length, exact agreement, word overlap).
 * Never awaited by a request and never throws: it cannot delay or change what the client got. Message text
 * is never logged, only figures.
 */

import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/log.js';
import { readUsage, type TokenFields } from '../metrics/usage.js';
import type { UpstreamMember } from './routing/upstream-set.js';
import { replyMessage } from './sse.js';
import { collectBody } from './upstream.js';

export interface ShadowComparison {
  upstream: string;
  primaryMs: number;
  shadowMs: number;
  primaryChars: number;
  shadowChars: number;
  /** Exactly the same text. */
  exact: boolean;
  /** Jaccard overlap of the two texts' lower-cased words, 0..1. */
  similarity: number;
}

export interface ShadowOptions {
  member: UpstreamMember;
  percent: number;
  /** Model name sent to the shadow upstream; unset: the request's. */
  model?: string | undefined;
  timeoutMs: number;
  /** The largest reply read (daemon.upstreamReplyLimitBytes); a larger one counts as failed. */
  replyLimitBytes?: number;
  log: Logger;
  /** The body as it may leave for this upstream (the compliance redaction hook); default unchanged. */
  prepare?: (member: UpstreamMember, body: Buffer) => Buffer;
  onResult?: (result: ShadowComparison | { upstream: string; failed: string }) => void;
  /** The tokens of a shadow reply (its cost is accounted too). */
  onUsage?: (tokens: TokenFields, model: string | undefined) => void;
  random?: () => number;
}

function words(text: string): Set<string> {
  return new Set(
    text
      .toLowerCase()
      .split(/[^\p{L}\p{N}]+/u)
      .filter((w) => w !== ''),
  );
}

/** Word-set overlap of two texts (1 for two empty texts). Pure. */
export function similarity(a: string, b: string): number {
  const wa = words(a);
  const wb = words(b);
  if (wa.size === 0 && wb.size === 0) return 1;
  let shared = 0;
  for (const w of wa) if (wb.has(w)) shared++;
  return shared / (wa.size + wb.size - shared);
}

function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  return '';
}

export class Shadow {
  private readonly options: ShadowOptions;
  private readonly random: () => number;
  /** Pending shadow requests (so close() can wait for them, and tests can). */
  private pending = new Set<Promise<void>>();

  constructor(options: ShadowOptions) {
    this.options = options;
    this.random = options.random ?? Math.random;
  }

  /** Whether this request is mirrored (decided once per request). */
  pick(): boolean {
    return this.options.percent > 0 && this.random() * 100 < this.options.percent;
  }

  /**
   * Mirrors `request` (a chat completion body, sent non-streaming) to the shadow upstream and compares its
   * answer with `primaryText`. Fire and forget.
   */
  mirror(request: Record<string, unknown>, primaryText: string, primaryMs: number): void {
    const task = this.run(request, primaryText, primaryMs).catch(() => {});
    this.pending.add(task);
    void task.finally(() => this.pending.delete(task));
  }

  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private async run(request: Record<string, unknown>, primaryText: string, primaryMs: number): Promise<void> {
    const { member, log, onResult } = this.options;
    const asked = typeof request.model === 'string' ? request.model : undefined;
    const model = this.options.model ?? (asked !== undefined && Object.hasOwn(member.models, asked) ? member.models[asked] : asked);
    const { stream: _stream, stream_options: _options, ...rest } = request;
    const plain = Buffer.from(JSON.stringify({ ...rest, ...(model !== undefined ? { model } : {}), stream: false }));
    const body = this.options.prepare ? this.options.prepare(member, plain) : plain;
    const started = performance.now();
    let failed: string | null = null;
    let shadowText = '';
    try {
      const res = await member.client.request({
        method: 'POST',
        path: '/v1/chat/completions',
        headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs),
      });
      const reply = await collectBody(res.body, this.options.replyLimitBytes);
      if (res.statusCode !== 200) failed = `status_${res.statusCode}`;
      else {
        const tokens: TokenFields = {};
        readUsage(reply, tokens);
        if (tokens.promptTokens !== undefined || tokens.completionTokens !== undefined) this.options.onUsage?.(tokens, asked);
        shadowText = textOf(replyMessage(JSON.parse(reply.toString('utf8')))?.content);
      }
    } catch (err) {
      failed = (err as { code?: string }).code ?? 'error';
    }
    const shadowMs = performance.now() - started;
    if (failed !== null) {
      log(`shadow upstream=${member.name} failed=${failed} shadow_ms=${shadowMs.toFixed(1)}`);
      onResult?.({ upstream: member.name, failed });
      return;
    }
    const result: ShadowComparison = {
      upstream: member.name,
      primaryMs,
      shadowMs,
      primaryChars: primaryText.length,
      shadowChars: shadowText.length,
      exact: primaryText === shadowText,
      similarity: similarity(primaryText, shadowText),
    };
    log(
      `shadow upstream=${result.upstream} primary_ms=${primaryMs.toFixed(1)} shadow_ms=${shadowMs.toFixed(1)} ` +
        `primary_chars=${result.primaryChars} shadow_chars=${result.shadowChars} exact=${result.exact} similarity=${result.similarity.toFixed(3)}`,
    );
    onResult?.(result);
  }
}
