/*
 * The simulated customers of a capacity test: each holds a session of `turns` turns, with a think time between
 * its reply and its next question. A due turn goes to a customer who is ready (not waiting for a reply, done
 * thinking), else to a new one, so the offered rate stays what the step says however slow the replies are.
 */

const WORDS = [
  'order',
  'parcel',
  'delivery',
  'address',
  'refund',
  'tracking',
  'number',
  'please',
  'when',
  'will',
  'my',
  'the',
  'arrive',
  'change',
  'payment',
  'invoice',
  'warehouse',
  'courier',
  'today',
  'tomorrow',
  'thanks',
  'help',
  'status',
  'return',
];

/** mulberry32: a seeded sequence in [0, 1), so two runs with one seed ask the same questions at the same times. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A question of about `tokens` tokens (one English word is about one token), with an order number. */
export function question(random: () => number, tokens: number): string {
  const words = [`Order ${10000 + Math.floor(random() * 90000)}:`];
  while (words.length < Math.max(1, tokens - 1)) words.push(WORDS[Math.floor(random() * WORDS.length)]!);
  return `${words.join(' ')}?`;
}

export interface Customer {
  sessionId: string;
  /** Turns asked so far. */
  turns: number;
  /** Performance-clock time from which it may ask again. */
  readyAt: number;
}

export class Customers {
  private readonly ready: Customer[] = [];
  private made = 0;

  constructor(private readonly options: { turns: number; thinkMs: number; prefix: string }) {}

  /** Customers that started a session so far. */
  get started(): number {
    return this.made;
  }

  /** Who asks the turn due at `now`: the customer ready the longest, else a new one. */
  take(now: number): Customer {
    const i = this.ready.findIndex((c) => c.readyAt <= now);
    if (i >= 0) return this.ready.splice(i, 1)[0]!;
    return { sessionId: `${this.options.prefix}-${++this.made}`, turns: 0, readyAt: now };
  }

  /** Its reply came (or failed) at `now`: it thinks, then may ask again, until it asked all its turns. */
  answered(customer: Customer, now: number): void {
    customer.turns++;
    if (customer.turns >= this.options.turns) return;
    customer.readyAt = now + this.options.thinkMs;
    this.ready.push(customer);
  }

  /** A new step starts with new customers. */
  clear(): void {
    this.ready.length = 0;
  }
}
