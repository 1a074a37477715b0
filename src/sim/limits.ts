/*
 * A provider's rate limits, as the simulator plays them (--rpm-limit, --tpm-limit, --limit-window-ms):
 * requests and tokens accepted in any sliding window of windowMs (a minute by default; shorter to compress
 * time in a test). A request that would go over is refused (429) and not counted; Retry-After is when enough of
 * the window has passed for it to fit. Tokens of a request: its prompt plus the reply it will get.
 */

import type { ServerResponse } from 'node:http';
import { errorBody } from '../openai-server/errors.js';
import { sendJson } from '../openai-server/respond.js';

export interface RateLimitOptions {
  /** Requests per window; 0: no limit. */
  rpm: number;
  /** Tokens per window; 0: no limit. */
  tpm: number;
  windowMs: number;
}

export class RateLimits {
  private readonly at: number[] = [];
  private readonly tokens: number[] = [];
  private head = 0;
  private tokenSum = 0;

  constructor(
    readonly options: RateLimitOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get active(): boolean {
    return this.options.rpm > 0 || this.options.tpm > 0;
  }

  private expire(now: number): void {
    const from = now - this.options.windowMs;
    while (this.head < this.at.length && this.at[this.head]! <= from) {
      this.tokenSum -= this.tokens[this.head]!;
      this.head++;
    }
    if (this.head > 1024 && this.head * 2 > this.at.length) {
      this.at.splice(0, this.head);
      this.tokens.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Counts the request and returns null when it fits; else the milliseconds until it would (not counted). */
  admit(tokens: number): number | null {
    const { rpm, tpm, windowMs } = this.options;
    const now = this.now();
    this.expire(now);
    const count = this.at.length - this.head;
    let waitMs = 0;
    if (rpm > 0 && count >= rpm) waitMs = this.at[this.head + count - rpm]! + windowMs - now;
    if (tpm > 0 && this.tokenSum + tokens > tpm) {
      // The oldest requests that must leave the window for this one's tokens to fit (all of them if it never can).
      let excess = this.tokenSum + tokens - tpm;
      let i = this.head;
      while (excess > 0 && i < this.at.length) excess -= this.tokens[i++]!;
      waitMs = Math.max(waitMs, (i > this.head ? this.at[i - 1]! : now) + windowMs - now);
    }
    if (waitMs > 0) return waitMs;
    this.at.push(now);
    this.tokens.push(tokens);
    this.tokenSum += tokens;
    return null;
  }
}

/** Sends the 429 a provider sends for a request over its limits, with Retry-After in whole seconds (at least 1). */
export function sendRateLimited(res: ServerResponse, waitMs: number, options: RateLimitOptions): void {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  const what = [options.rpm > 0 ? `${options.rpm} requests` : '', options.tpm > 0 ? `${options.tpm} tokens` : '']
    .filter(Boolean)
    .join(' and ');
  sendJson(res, 429, errorBody(429, `Rate limit reached: ${what} per ${options.windowMs} ms (simulated); retry after ${seconds} s.`), {
    'retry-after': String(seconds),
  });
}
