/*
 * A circuit breaker per tool: closed -> open after `failures` consecutive failures -> half-open once
 * `cooldownMs` passed (one trial call may go) -> closed on that call's success, open again on its failure.
 * Pure state plus an injected clock.
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  private consecutiveFailures = 0;
  private openedAt = 0;
  private opened = false;
  private trialInFlight = false;

  constructor(
    private readonly failures: number,
    private readonly cooldownMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): BreakerState {
    if (!this.opened) return 'closed';
    return this.now() - this.openedAt >= this.cooldownMs ? 'half-open' : 'open';
  }

  /** Milliseconds until an open breaker lets a trial call through (0 when it would now). */
  get retryInMs(): number {
    return this.opened ? Math.max(0, this.openedAt + this.cooldownMs - this.now()) : 0;
  }

  /** Whether a call may go now; in half-open only one trial call at a time. Call success()/failure() after. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open' || this.trialInFlight) return false;
    this.trialInFlight = true;
    return true;
  }

  success(): void {
    this.consecutiveFailures = 0;
    this.opened = false;
    this.trialInFlight = false;
  }

  /** The call ended without a verdict on the endpoint (its client went away): a half-open trial may go again. */
  abandon(): void {
    this.trialInFlight = false;
  }

  failure(): void {
    this.trialInFlight = false;
    this.consecutiveFailures++;
    if (this.opened || this.consecutiveFailures >= this.failures) {
      this.opened = true;
      this.openedAt = this.now();
    }
  }
}
