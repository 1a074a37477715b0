// A seeded pseudo-random generator for the redaction corpus, so that the same seed always gives the same
// messages (Math.random is never used). Marsaglia's xorshift32 (G. Marsaglia, "Xorshift RNGs", Journal of
// Statistical Software 8(14), 2003, shift triple 13/17/5): statistically weak, but plenty to vary templates.

export class Prng {
  private state: number;

  constructor(seed: number) {
    // A zero state stays zero forever; any other 32-bit value cycles through all 2^32 - 1 others.
    this.state = seed >>> 0 || 0x9e3779b9;
    for (let i = 0; i < 8; i++) this.next(); // small seeds start with small outputs: warm up
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    let x = this.state;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state;
  }

  /** A float in [0, 1). */
  float(): number {
    return this.next() / 4294967296;
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.float() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.float() * items.length)]!;
  }

  /** Picks by weight: [[item, weight], ...]. */
  weighted<T>(items: readonly (readonly [T, number])[]): T {
    const total = items.reduce((s, [, w]) => s + w, 0);
    let r = this.float() * total;
    for (const [item, w] of items) {
      if ((r -= w) < 0) return item;
    }
    return items[items.length - 1]![0];
  }

  digits(n: number, first = '0123456789'): string {
    let s = first[Math.floor(this.float() * first.length)]!;
    for (let i = 1; i < n; i++) s += String(this.int(0, 9));
    return s;
  }
}
