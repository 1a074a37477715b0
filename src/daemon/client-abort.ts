import { EventEmitter } from 'node:events';

/**
 * What a request's upstream work watches for its client going away. An AbortController and its AbortSignal
 * (an EventTarget, tracked for GC) cost 10-15 us per request, 2.5% of the daemon's CPU at 50 connections
 * (#21), for an abort that almost never comes. undici's request() takes any EventEmitter with `aborted` and an
 * 'abort' event, which costs well under a microsecond; a real AbortSignal is made only for what needs one (a
 * wait for rate-limit budget, a failover's backoff, tool calls), on first use, and aborted with this.
 */
export class ClientAbort extends EventEmitter {
  aborted = false;
  private controller: AbortController | null = null;

  /** An AbortSignal that aborts with this (aborted already if this is). */
  get signal(): AbortSignal {
    if (this.controller === null) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    this.emit('abort');
    this.controller?.abort();
  }
}
