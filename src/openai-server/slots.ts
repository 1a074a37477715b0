/*
 * Sequence slots, like vLLM's --max-num-seqs: at most `capacity` requests generate at once; the rest
 * wait in arrival order. Waiting and running counts feed vllm:num_requests_waiting / _running.
 */

interface Waiter {
  grant: () => void;
}

export class SequenceSlots {
  private active = 0;
  private readonly queue: Waiter[] = [];

  constructor(private readonly capacity: number) {}

  get running(): number {
    return this.active;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /**
   * Resolves with a release function once a slot is free. Rejects with the signal's reason if it aborts
   * while waiting (the waiter leaves the queue). Release is idempotent.
   */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    const release = this.releaser();
    if (this.active < this.capacity && this.queue.length === 0) {
      this.active++;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          this.active++;
          resolve(release);
        },
      };
      const onAbort = () => {
        const index = this.queue.indexOf(waiter);
        if (index >= 0) this.queue.splice(index, 1);
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      const next = this.queue.shift();
      next?.grant();
    };
  }
}
