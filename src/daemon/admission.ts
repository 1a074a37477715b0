/*
 * Admission control for chat requests: at most `maxInFlight` at once, at most `maxQueue` waiting (FIFO) for
 * at most `maxQueueWaitMs`; beyond that 429 at once with Retry-After, never an unbounded queue. A free slot
 * is taken synchronously (no promise) so the common path costs nothing measurable.
 */

import { ApiError } from './api-error.js';

export interface AdmissionOptions {
  maxInFlight: number;
  maxQueue: number;
  maxQueueWaitMs: number;
}

interface Waiter {
  grant: (release: () => void) => void;
  timer: NodeJS.Timeout;
  onAbort: (() => void) | null;
  signal: AbortSignal | null;
}

export class Admission {
  private inFlight = 0;
  private readonly queue: Waiter[] = [];
  private readonly options: AdmissionOptions;
  private readonly releaseOne: () => void;

  constructor(options: AdmissionOptions) {
    this.options = options;
    this.releaseOne = () => this.release();
  }

  get running(): number {
    return this.inFlight;
  }

  get waiting(): number {
    return this.queue.length;
  }

  private busy(why: string): ApiError {
    // A slot frees when some reply ends; a second is a fair guess without better knowledge.
    const seconds = Math.max(1, Math.ceil(this.options.maxQueueWaitMs / 2000));
    return new ApiError(429, `the daemon is at capacity (${why}); retry in ${seconds} s`, {
      code: 'rate_limit_exceeded',
      headers: { 'retry-after': String(seconds) },
    });
  }

  /**
   * A release function when a slot is free now, else a promise of one (or a 429 ApiError when the queue is
   * full, or when the wait ran out). Call the release function exactly once.
   */
  acquire(signal?: AbortSignal): (() => void) | Promise<() => void> {
    const { maxInFlight, maxQueue, maxQueueWaitMs } = this.options;
    if (maxInFlight === 0 || (this.inFlight < maxInFlight && this.queue.length === 0)) {
      this.inFlight++;
      return this.releaseOne;
    }
    if (this.queue.length >= maxQueue) throw this.busy(`${this.inFlight} requests in flight, ${this.queue.length} queued`);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: resolve,
        signal: signal ?? null,
        onAbort: null,
        timer: setTimeout(() => {
          this.remove(waiter);
          reject(this.busy(`no slot within ${maxQueueWaitMs} ms`));
        }, maxQueueWaitMs),
      };
      if (signal) {
        waiter.onAbort = () => {
          this.remove(waiter);
          reject(new ApiError(499, 'the client went away while queued', { code: 'client_closed' }));
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
      this.queue.push(waiter);
    });
  }

  private remove(waiter: Waiter): void {
    const i = this.queue.indexOf(waiter);
    if (i >= 0) this.queue.splice(i, 1);
    clearTimeout(waiter.timer);
    if (waiter.signal && waiter.onAbort) waiter.signal.removeEventListener('abort', waiter.onAbort);
  }

  private release(): void {
    const next = this.queue.shift();
    if (next) {
      // The slot passes straight to the next waiter: in-flight stays the same.
      clearTimeout(next.timer);
      if (next.signal && next.onAbort) next.signal.removeEventListener('abort', next.onAbort);
      next.grant(this.releaseOne);
      return;
    }
    this.inFlight--;
  }
}
