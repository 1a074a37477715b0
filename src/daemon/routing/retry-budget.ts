/**
 * Envoy-style retry budget: retries may add at most `percent` % to the requests of the last `windowMs`
 * (ten 1 s buckets), plus `minRetries` per window so a quiet daemon can still fail over. Pure state plus an
 * injected clock.
 */
export class RetryBudget {
  private readonly requests: number[];
  private readonly retries: number[];
  private readonly bucketMs: number;
  private currentBucket = -1;

  constructor(
    private readonly percent: number,
    private readonly minRetries = 3,
    windowMs = 10_000,
    buckets = 10,
  ) {
    this.requests = new Array<number>(buckets).fill(0);
    this.retries = new Array<number>(buckets).fill(0);
    this.bucketMs = windowMs / buckets;
  }

  private slot(now: number): number {
    const bucket = Math.floor(now / this.bucketMs);
    const n = this.requests.length;
    if (bucket !== this.currentBucket) {
      // Clear the buckets skipped since the last use (all of them after a long pause).
      const gap = this.currentBucket < 0 ? n : Math.min(n, bucket - this.currentBucket);
      for (let i = 1; i <= gap; i++) {
        const j = (((bucket - gap + i) % n) + n) % n;
        this.requests[j] = 0;
        this.retries[j] = 0;
      }
      this.currentBucket = bucket;
    }
    return ((bucket % n) + n) % n;
  }

  /** One client request (its first attempt). */
  recordRequest(now: number): void {
    this.requests[this.slot(now)]!++;
  }

  /** Whether one more retry fits the budget; if so it is counted. */
  tryRetry(now: number): boolean {
    const slot = this.slot(now);
    let requests = 0;
    let retries = 0;
    for (let i = 0; i < this.requests.length; i++) {
      requests += this.requests[i]!;
      retries += this.retries[i]!;
    }
    const allowed = Math.max(this.minRetries, (requests * this.percent) / 100);
    if (retries + 1 > allowed) return false;
    this.retries[slot]!++;
    return true;
  }
}
