/*
 * The requests the CPU engine is serving (body being read, queued, generating or writing), so that a stop can
 * wait for them to finish: whenIdle() settles when none is left, when its timeout passes, or when the wait is
 * ended early (a second stop signal).
 */

export type DrainOutcome = 'idle' | 'timeout' | 'ended';

export class ActiveRequests {
  private readonly active = new Set<Promise<void>>();
  private readonly idleWaiters = new Set<() => void>();
  private waitEnd: (() => void) | undefined;

  get size(): number {
    return this.active.size;
  }

  /** Counts `work` as active until it settles (it must not reject). */
  track(work: Promise<void>): void {
    this.active.add(work);
    void work.finally(() => {
      this.active.delete(work);
      if (this.active.size === 0) for (const notify of [...this.idleWaiters]) notify();
    });
  }

  /** 'idle' once nothing is active; 'timeout' when ms pass first; 'ended' when endWait() is called first. */
  whenIdle(ms: number): Promise<DrainOutcome> {
    if (this.active.size === 0) return Promise.resolve('idle');
    if (ms <= 0) return Promise.resolve('timeout');
    // The executor runs at once: endWait() works from the moment whenIdle() returns.
    return new Promise((resolve) => {
      const finish = (how: DrainOutcome) => {
        clearTimeout(timer);
        this.idleWaiters.delete(onIdle);
        if (this.waitEnd === onEnd) this.waitEnd = undefined;
        resolve(how);
      };
      const onIdle = () => finish('idle');
      const onEnd = () => finish('ended');
      const timer = setTimeout(() => finish('timeout'), ms);
      this.idleWaiters.add(onIdle);
      this.waitEnd = onEnd;
    });
  }

  endWait(): void {
    this.waitEnd?.();
  }
}
