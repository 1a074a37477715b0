/*
 * An upstream's rate-limit budget (upstreams[].limits): the requests and tokens the daemon sent it in a sliding
 * window, so the router can choose another upstream before this one would refuse (docs/cost-and-capacity.md).
 * A request counts from when it is sent, with its tokens estimated (prompt from its bytes, reply from max_tokens
 * or this upstream's recent average), corrected from the reply's usage. Its time is moved to when the upstream
 * answered: by then the provider has counted it, so however late it got there (a busy machine, a slow network)
 * the daemon never forgets it before the provider does. The window is also kept 2% (at least 100 ms) longer
 * than the provider's. A request leaves the window only after those sent before it (a late answer holds the
 * ones after it a little longer, never shorter). Pure state plus the clock the caller passes.
 */

export interface BudgetLimits {
  /** Requests per window. */
  rpm?: number | undefined;
  /** Prompt + completion tokens per window. */
  tpm?: number | undefined;
  windowMs: number;
}

/** A sent request's place in the window; settle() corrects its tokens. */
export interface BudgetEntry {
  at: number;
  tokens: number;
  /** Still inside the window (its tokens are in the sum). */
  live: boolean;
}

export class UpstreamBudget {
  private readonly entries: BudgetEntry[] = [];
  private head = 0;
  private tokenSum = 0;
  readonly spanMs: number;
  /** Completion tokens of this upstream's recent replies (moving average), for requests without max_tokens. */
  completionAverage = 0;
  private settled = 0;

  constructor(readonly limits: BudgetLimits) {
    this.spanMs = limits.windowMs + Math.max(100, Math.round(limits.windowMs * 0.02));
  }

  get countsTokens(): boolean {
    return this.limits.tpm !== undefined;
  }

  private expire(now: number): void {
    const from = now - this.spanMs;
    const entries = this.entries;
    while (this.head < entries.length && entries[this.head]!.at <= from) {
      const e = entries[this.head++]!;
      e.live = false;
      this.tokenSum -= e.tokens;
    }
    if (this.head > 1024 && this.head * 2 > entries.length) {
      entries.splice(0, this.head);
      this.head = 0;
    }
  }

  /** Requests and tokens in the window now (for the metrics). */
  used(now: number): { requests: number; tokens: number } {
    this.expire(now);
    return { requests: this.entries.length - this.head, tokens: this.tokenSum };
  }

  /** Milliseconds until a request of `tokens` fits (0: it fits now). */
  freeInMs(now: number, tokens: number): number {
    this.expire(now);
    const { rpm, tpm } = this.limits;
    const entries = this.entries;
    const count = entries.length - this.head;
    // Entries leave in order, each once those before it have: the time the first k are gone is their latest time.
    let leave = Number.NEGATIVE_INFINITY;
    let i = this.head;
    if (rpm !== undefined && count >= rpm) {
      for (const end = this.head + count - rpm; i <= end; i++) leave = Math.max(leave, entries[i]!.at);
    }
    if (tpm !== undefined && count > 0) {
      let excess = this.tokenSum + tokens - tpm;
      for (let j = this.head; j < i; j++) excess -= entries[j]!.tokens;
      for (; excess > 0 && i < entries.length; i++) {
        excess -= entries[i]!.tokens;
        leave = Math.max(leave, entries[i]!.at);
      }
    }
    return leave === Number.NEGATIVE_INFINITY ? 0 : Math.max(0, leave + this.spanMs - now);
  }

  fits(now: number, tokens: number): boolean {
    const { rpm, tpm } = this.limits;
    this.expire(now);
    if (rpm !== undefined && this.entries.length - this.head >= rpm) return false;
    return tpm === undefined || this.tokenSum + tokens <= tpm || this.entries.length === this.head;
  }

  /** Counts a request sent now. */
  take(now: number, tokens: number): BudgetEntry {
    this.expire(now);
    const entry: BudgetEntry = { at: now, tokens, live: true };
    this.entries.push(entry);
    this.tokenSum += tokens;
    return entry;
  }

  /** The upstream answered it (any status): the provider has counted it by now, so it stays in the window from here. */
  answered(entry: BudgetEntry, now: number): void {
    if (now > entry.at) entry.at = now;
  }

  /** The reply's real token counts replace the estimate. */
  settle(entry: BudgetEntry, tokens: number, completion: number): void {
    if (entry.live) this.tokenSum += tokens - entry.tokens;
    entry.tokens = tokens;
    // A short memory: the last 20 or so replies.
    this.settled++;
    this.completionAverage += (completion - this.completionAverage) / Math.min(this.settled, 20);
  }
}
