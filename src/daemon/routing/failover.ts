import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from '../api-error.js';
import type { ClientAbort } from '../client-abort.js';
import type { UpstreamRequest, UpstreamResponse } from '../upstream.js';
import { isTimeout, upstreamFailure } from '../upstream.js';
import type { BudgetEntry } from './budget.js';
import { BudgetQueue } from './budget-queue.js';
import { ClientGoneError } from './client-gone.js';
import { RetryBudget } from './retry-budget.js';
import { retryAfterMs, type TokenEstimate, type UpstreamMember, type UpstreamSet } from './upstream-set.js';

export { ClientGoneError } from './client-gone.js';

/** Per-attempt figures for the metrics: one call per attempt, and per ejection. */
export interface RoutingEvents {
  attempt?(upstream: string): void;
  /** reason: timeout, unavailable, overloaded (429/503), status_NNN. */
  failure?(upstream: string, reason: string): void;
  retry?(upstream: string): void;
  ejected?(upstream: string, forMs: number): void;
}

export interface FailoverOptions {
  maxAttempts: number;
  retryBudgetPercent: number;
  /** The per-request timeout (for the 504's message). */
  timeoutMs: number;
  /** How long, and how many, requests may wait for rate-limit budget (admission.maxQueueWaitMs, maxQueue). */
  budgetWait?: { maxQueue: number; maxWaitMs: number };
  events?: RoutingEvents;
}

export interface Routed {
  response: UpstreamResponse;
  member: UpstreamMember;
  /** Attempts made, this one included. */
  attempts: number;
  /** Its place in the upstream's rate-limit window, to correct with the reply's tokens; null without limits. */
  budget: BudgetEntry | null;
}

export interface RouteRequest {
  sessionId: string | null;
  /** The request for one upstream (its model name mapped when it has a mapping). */
  build: (member: UpstreamMember) => UpstreamRequest;
  /** The client went away: stop waiting, do not retry. */
  abort: ClientAbort;
  /** The request's size, asked only when an upstream limits tokens or routing is cheapest. */
  estimate?: () => TokenEstimate;
}

function drain(response: UpstreamResponse): void {
  response.body.on('error', () => {});
  response.body.resume();
}

/**
 * Sends a request with failover before the first byte: connection errors, 429/503 (Retry-After steers the
 * choice) and other 5xx move on to the next upstream, at most maxAttempts in all, while the retry budget allows,
 * with a short backoff. A timeout is not retried (the request's time is spent). Once an answer is returned
 * nothing is retried: the caller streams it.
 */
export class Router {
  readonly set: UpstreamSet;
  private readonly budget: RetryBudget;
  private readonly options: FailoverOptions;
  private readonly queue: BudgetQueue | null;

  constructor(set: UpstreamSet, options: FailoverOptions) {
    this.set = set;
    this.options = options;
    this.budget = new RetryBudget(options.retryBudgetPercent);
    this.queue = set.budgeted ? new BudgetQueue(set, options.budgetWait ?? { maxQueue: 512, maxWaitMs: 5000 }) : null;
  }

  /** Requests waiting for rate-limit budget. */
  get waiting(): number {
    return this.queue?.waiting ?? 0;
  }

  /** The success/failure verdict on a stream that broke after it started (counts towards ejection). */
  streamFailed(member: UpstreamMember): void {
    this.set.failure(member);
    this.options.events?.failure?.(member.name, 'stream_error');
  }

  async send(r: RouteRequest): Promise<Routed> {
    const { set, options } = this;
    const events = options.events;
    this.budget.recordRequest(set.now());
    const estimate = set.needsEstimate && r.estimate ? r.estimate() : null;
    if (this.queue) {
      const wait = this.queue.admit(estimate, r.abort.signal);
      // After the wait nothing awaits before the pick below counts the request in a budget.
      if (wait) await wait;
    }
    let tried: UpstreamMember[] | null = null;
    let allOverloaded = true;
    let last: { member: UpstreamMember; response?: UpstreamResponse; error?: unknown } | null = null;
    for (let attempt = 1; ; attempt++) {
      const member = set.pick(r.sessionId, tried, estimate);
      if (member === null) {
        // Budget taken by a request that did not wait (a race the queue's order makes rare): busy, not failed.
        if (attempt === 1 && this.queue) throw this.queue.refusal(estimate, 'none had room');
        break;
      }
      if (attempt > 1) {
        if (!this.budget.tryRetry(set.now())) break;
        events?.retry?.(member.name);
        // Short, jittered backoff: a burst of failovers does not all land on the next upstream at once.
        await sleep(Math.round(5 * 2 ** (attempt - 2) * (0.5 + Math.random())), undefined, { signal: r.abort.signal }).catch(() => {});
        if (r.abort.aborted) throw new ClientGoneError('the client went away');
      }
      if (last?.response) drain(last.response);
      set.begin(member);
      const entry = member.budget ? member.budget.take(set.now(), member.tokensFor(estimate)) : null;
      events?.attempt?.(member.name);
      let response: UpstreamResponse;
      try {
        response = await member.client.request(r.build(member));
        if (entry) member.budget!.answered(entry, set.now());
      } catch (err) {
        if (r.abort.aborted) {
          set.release(member);
          throw new ClientGoneError('the client went away');
        }
        set.failure(member);
        const timeout = isTimeout(err);
        events?.failure?.(member.name, timeout ? 'timeout' : 'unavailable');
        allOverloaded = false;
        last = { member, error: err };
        if (timeout) break;
        (tried ??= []).push(member);
        if (attempt >= options.maxAttempts) break;
        continue;
      }
      const status = response.statusCode;
      if (status === 429 || status === 503) {
        set.overload(member, retryAfterMs(response.headers['retry-after'], Date.now()));
        events?.failure?.(member.name, 'overloaded');
      } else if (status >= 500) {
        set.failure(member);
        events?.failure?.(member.name, `status_${status}`);
        allOverloaded = false;
      } else {
        set.success(member);
        return { response, member, attempts: attempt, budget: entry };
      }
      last = { member, response };
      (tried ??= []).push(member);
      if (attempt >= options.maxAttempts) break;
    }

    // One upstream asked and it was overloaded: its own answer (status, Retry-After, body) goes back as it is.
    if (last?.response && tried !== null && tried.length === 1)
      return { response: last.response, member: last.member, attempts: 1, budget: null };
    if (last === null || (allOverloaded && last.response)) {
      // Every upstream asked was overloaded: busy, retry when the first of them frees up. (The first attempt
      // always finds an upstream, so the daemon never answers this without asking.)
      if (last?.response) drain(last.response);
      const seconds = Math.max(1, Math.ceil(set.overloadEndsInMs() / 1000));
      throw new ApiError(429, `every upstream engine is busy; retry in ${seconds} s`, {
        code: 'upstream_overloaded',
        headers: { 'retry-after': String(seconds) },
      });
    }
    if (last.response) return { response: last.response, member: last.member, attempts: tried?.length ?? 1, budget: null };
    throw upstreamFailure(last.error, last.member.url, options.timeoutMs);
  }
}
