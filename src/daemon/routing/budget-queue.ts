/*
 * Requests waiting for rate-limit budget: when no upstream has room for a request under its limits
 * (upstreams[].limits), it waits here, first come first served, for at most admission.maxQueueWaitMs and
 * behind at most admission.maxQueue others; then 429 with Retry-After (when the first upstream has room again).
 * A request goes on at once when one has room and nobody waits before it.
 */

import { ApiError } from '../api-error.js';
import { ClientGoneError } from './client-gone.js';
import type { TokenEstimate, UpstreamSet } from './upstream-set.js';

interface Waiter {
  estimate: TokenEstimate | null;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
  signal: AbortSignal;
  onAbort: () => void;
}

export interface BudgetQueueOptions {
  maxQueue: number;
  maxWaitMs: number;
}

export class BudgetQueue {
  private readonly waiters: Waiter[] = [];
  private timer: NodeJS.Timeout | null = null;
  private pumpScheduled = false;

  constructor(
    private readonly set: UpstreamSet,
    private readonly options: BudgetQueueOptions,
  ) {}

  get waiting(): number {
    return this.waiters.length;
  }

  /** The 429 for a request that found no upstream with room. */
  refusal(estimate: TokenEstimate | null, why: string): ApiError {
    const seconds = Math.max(1, Math.ceil(this.set.budgetFreeInMs(estimate) / 1000));
    return new ApiError(429, `every upstream is at its rate limit (${why}); retry in ${seconds} s`, {
      code: 'upstream_budget_exhausted',
      headers: { 'retry-after': String(seconds) },
    });
  }

  /**
   * Null when the request may go now; else a promise that resolves when it may (the caller must then pick and
   * count it before its next await), or rejects with the 429 or ClientGoneError. Throws the 429 when the queue
   * is full.
   */
  admit(estimate: TokenEstimate | null, signal: AbortSignal): Promise<void> | null {
    if (this.waiters.length === 0 && this.set.anyFits(estimate)) return null;
    if (this.waiters.length >= this.options.maxQueue) throw this.refusal(estimate, `${this.waiters.length} requests already wait`);
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        estimate,
        resolve,
        reject,
        signal,
        timer: setTimeout(() => {
          this.remove(waiter);
          reject(this.refusal(estimate, `none had room within ${this.options.maxWaitMs} ms`));
        }, this.options.maxWaitMs),
        onAbort: () => {
          this.remove(waiter);
          reject(new ClientGoneError('the client went away while waiting for upstream budget'));
        },
      };
      signal.addEventListener('abort', waiter.onAbort, { once: true });
      this.waiters.push(waiter);
      if (this.waiters.length === 1) this.pump();
    });
  }

  private remove(waiter: Waiter): void {
    const i = this.waiters.indexOf(waiter);
    if (i < 0) return;
    this.waiters.splice(i, 1);
    clearTimeout(waiter.timer);
    waiter.signal.removeEventListener('abort', waiter.onAbort);
    if (i === 0) this.schedule();
  }

  private schedule(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /**
   * Lets the first waiter go when some upstream has room for it, then looks again on the next turn of the event
   * loop (by then it has been counted); otherwise sleeps until the first upstream has room.
   */
  private pump(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const head = this.waiters[0];
    if (!head) return;
    if (this.set.anyFits(head.estimate)) {
      this.waiters.shift();
      clearTimeout(head.timer);
      head.signal.removeEventListener('abort', head.onAbort);
      head.resolve();
      this.schedule();
      return;
    }
    this.timer = setTimeout(() => this.pump(), Math.max(1, this.set.budgetFreeInMs(head.estimate)));
  }
}
