/**
 * Why a new request used to wait for the others to finish (node-llama-cpp 3.21.1), and the gate that fixes it.
 *
 * A pooled sequence still holds the previous request's prompt and reply. Before LlamaChat evaluates the new
 * prompt it erases what differs (LlamaContextSequence.eraseContextTokenRanges), and that takes the context's
 * "context" lock. The context's batch dispatcher holds the same lock for a loop that runs while any decode
 * is queued; the sequences generating re-queue their next token in microtasks of the previous batch, so the
 * loop only ends when every one of them has finished its reply. The new request's erase (and so its first
 * token) waited for all the others: 50-90 ms at 4 sequences on tiny-chat, seconds on a real model.
 *
 * The gate: while a request prepares a used sequence, every generation waits at its next token boundary
 * (before asking its sequence for the next token). No decode is queued, the dispatcher's loop ends after the
 * batch it is decoding, the erase gets the lock (locks are first come, first served), and once the new
 * request asks for its first evaluation the gate opens: the others go on, and their next tokens and the new
 * prompt share one batch. The pause is one batch at most, per request that starts on a used sequence.
 */

/** The part of a node-llama-cpp LlamaContextSequence the gate uses. */
export interface EvaluatingSequence {
  readonly nextTokenIndex: number;
  evaluate(tokens: number[], options?: object): AsyncGenerator<number, void, unknown>;
}

/** Counts the requests preparing a sequence; generations pass only while none is. */
export class EvaluationGate {
  private holds = 0;
  private opened: Promise<void> | undefined;
  private open: (() => void) | undefined;

  /** Closes the gate until the returned function is called (once; later calls do nothing). */
  hold(): () => void {
    if (this.holds++ === 0) this.opened = new Promise((resolve) => (this.open = resolve));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (--this.holds === 0) {
        const open = this.open;
        this.opened = this.open = undefined;
        open?.();
      }
    };
  }

  get closed(): boolean {
    return this.holds > 0;
  }

  /** undefined while open (no await, no extra tick per token); else a promise settled when it opens. */
  whenOpen(): Promise<void> | undefined {
    return this.opened;
  }
}

export interface GatedSequence<S extends EvaluatingSequence> {
  /** Give this to LlamaChat: the same sequence, whose evaluate() waits at the gate before each step. */
  readonly sequence: S;
  /**
   * A request is about to run on this sequence: when it holds tokens of an earlier request (an erase is
   * coming), close the gate until this sequence's next evaluate() call. Returns the release, for when the
   * request ends without evaluating (an error, an abort).
   */
  prepare(): () => void;
}

export function gateSequence<S extends EvaluatingSequence>(target: S, gate: EvaluationGate): GatedSequence<S> {
  let pending: (() => void) | undefined;
  const evaluate = (tokens: number[], options?: object) => {
    // The request evaluates: whatever it had to erase is erased, so it no longer holds the others back.
    pending?.();
    pending = undefined;
    return gated(target.evaluate(tokens, options), gate);
  };
  // node-llama-cpp's own methods see their own object as `this`, never the proxy (bound once per method).
  const bound = new Map<PropertyKey, [Function, Function]>();
  const sequence = new Proxy(target, {
    get(object, property) {
      if (property === 'evaluate') return evaluate;
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      const known = bound.get(property);
      if (known?.[0] === value) return known[1];
      const method = (value as Function).bind(object);
      bound.set(property, [value as Function, method]);
      return method;
    },
  });
  return {
    sequence,
    prepare() {
      pending?.();
      pending = undefined;
      if (target.nextTokenIndex === 0) return () => undefined;
      const release = gate.hold();
      pending = release;
      return release;
    },
  };
}

/** The sequence's token generator, waiting at the gate before each step (the first included). */
async function* gated(inner: AsyncGenerator<number, void, unknown>, gate: EvaluationGate): AsyncGenerator<number, void, unknown> {
  let input: unknown;
  try {
    for (;;) {
      const opened = gate.whenOpen();
      if (opened) await opened;
      const step = await inner.next(input);
      if (step.done) return;
      // LlamaChat may answer a token with a replacement (what to evaluate next): pass it on.
      input = yield step.value;
    }
  } finally {
    await inner.return(undefined);
  }
}
