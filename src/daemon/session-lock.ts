/*
 * One lock per session (tenant and id), so two requests on the same session run one after the other (the second sees
 * the first's turn in its history) while other sessions never wait. Waiting is bounded: after waitMs the
 * waiter gets SessionBusyError, and so is their number (SessionQueueFullError). Entries exist only while a
 * session is held, so the map stays small.
 */

import { sessionKey } from '../core/tenant.js';

export class SessionBusyError extends Error {
  constructor(
    readonly sessionId: string,
    readonly waitedMs: number,
  ) {
    super(`session ${sessionId} is busy: another request on it did not finish within ${waitedMs} ms`);
  }
}

/** More requests already wait for this session than may: refused at once instead of queueing without bound. */
export class SessionQueueFullError extends Error {
  constructor(
    readonly sessionId: string,
    readonly waiters: number,
  ) {
    super(`session ${sessionId} already has ${waiters} request(s) waiting for it`);
  }
}

interface Waiter {
  grant: () => void;
  timer: NodeJS.Timeout | null;
}

export class SessionLocks {
  private readonly held = new Map<string, Waiter[]>();

  /**
   * Resolves with a release function once the session is ours. Call release exactly once. Rejects with
   * SessionQueueFullError at once when `maxWaiters` already wait for it.
   */
  acquire(tenant: string, id: string, waitMs: number, maxWaiters = Number.POSITIVE_INFINITY): Promise<() => void> {
    const key = sessionKey(tenant, id);
    const queue = this.held.get(key);
    if (!queue) {
      this.held.set(key, []);
      return Promise.resolve(this.releaser(key));
    }
    if (queue.length >= maxWaiters) return Promise.reject(new SessionQueueFullError(id, queue.length));
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => resolve(this.releaser(key)),
        timer: null,
      };
      waiter.timer = setTimeout(() => {
        const i = queue.indexOf(waiter);
        if (i >= 0) queue.splice(i, 1);
        reject(new SessionBusyError(id, waitMs));
      }, waitMs);
      queue.push(waiter);
    });
  }

  /** Requests waiting for a session held by another (the metrics' queued requests). */
  get waiting(): number {
    let n = 0;
    for (const queue of this.held.values()) n += queue.length;
    return n;
  }

  /** Sessions held right now (for shutdown logs and tests). */
  get size(): number {
    return this.held.size;
  }

  private releaser(id: string): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const queue = this.held.get(id);
      const next = queue?.shift();
      if (next) {
        if (next.timer) clearTimeout(next.timer);
        next.grant();
      } else {
        this.held.delete(id);
      }
    };
  }
}
