/*
 * Why a new request used to wait for the others to finish (node-llama-cpp 3.21.1), and the gate that fixes it.
 *
 * A pooled sequence still holds the previous request's prompt and reply. Before LlamaChat evaluates the new
 * prompt it erases what differs (LlamaContextSequence.adaptStateToTokens / eraseContextTokenRanges), and that
 * takes the context's "context" lock. The context's batch dispatcher holds the same lock for a loop that runs
 * while any decode is queued, and the sequences generating re-queue their next token before the loop looks
 * again (with two or more of them, always). So the loop, and the lock, only ended when every other sequence
 * had finished its reply: the new request's first token waited 50-90 ms at 4 sequences on tiny-chat (one
 * decode step is about 1 ms), and would wait seconds on a real model.
 *
 * The gate: while an erase is pending on any sequence, every generation waits at its next token boundary
 * (before asking its sequence for the next token). Nothing is queued, the dispatcher's loop ends after the
 * batch it is decoding, the erase gets the lock (locks are first come, first served), and the gate opens:
 * the others go on, and the new prompt joins their next batch. The pause is about one batch, per request
 * that starts on a used sequence whose tokens differ from its prompt.
 */

type Token = number;

/** The part of a node-llama-cpp LlamaContextSequence the gate wraps (the calls LlamaChat makes). */
export interface EvaluatingSequence {
  evaluate(tokens: Token[], options?: object): AsyncGenerator<Token, void, unknown>;
  adaptStateToTokens(tokens: Token[], allowShift?: boolean): Promise<void>;
  eraseContextTokenRanges(ranges: ReadonlyArray<{ start: number; end: number }>): Promise<void>;
}

/** Counts the erases pending; generations pass only while there is none. */
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

/** Methods that may erase (and so wait for the context lock): the gate stays closed while one runs. */
const ERASING = new Set<PropertyKey>(['adaptStateToTokens', 'eraseContextTokenRanges', 'clearHistory']);

/**
 * The same sequence, for LlamaChat: evaluate() waits at the gate before each step, and the erasing methods
 * close the gate while they run. Every other property and method is the sequence's own, run on the sequence
 * itself (never on the proxy), so node-llama-cpp's internals see their own object.
 */
export function gateSequence<S extends EvaluatingSequence>(target: S, gate: EvaluationGate): S {
  const wrapped = new Map<PropertyKey, [Function, Function]>();
  const wrap = (property: PropertyKey, method: Function): Function => {
    if (property === 'evaluate') return (tokens: Token[], options?: object) => gated(target.evaluate(tokens, options), gate);
    if (!ERASING.has(property)) return method.bind(target);
    return (...args: unknown[]) => {
      const release = gate.hold();
      try {
        return Promise.resolve(method.apply(target, args)).finally(release);
      } catch (err) {
        release();
        throw err;
      }
    };
  };
  return new Proxy(target, {
    get(object, property) {
      const value: unknown = Reflect.get(object, property, object);
      if (typeof value !== 'function') return value;
      const known = wrapped.get(property);
      if (known?.[0] === value) return known[1];
      const method = wrap(property, value);
      wrapped.set(property, [value, method]);
      return method;
    },
  });
}

/**
 * The sequence's token generator, waiting at the gate before each step (the first included). A plain
 * iterator, not an async generator: while the gate is open, next() is the sequence's own next(), no extra
 * promises per token (an async generator here cost 8-15% of tiny-chat's tokens/s at 4 sequences).
 */
function gated(inner: AsyncGenerator<Token, void, unknown>, gate: EvaluationGate): AsyncGenerator<Token, void, unknown> {
  const iterator = {
    next(input?: unknown) {
      const opened = gate.whenOpen();
      // LlamaChat may answer a token with a replacement (what to evaluate next): passed on as it is.
      return opened ? opened.then(() => inner.next(input)) : inner.next(input);
    },
    return: (value?: void) => inner.return(value),
    throw: (err?: unknown) => inner.throw(err),
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator as AsyncGenerator<Token, void, unknown>;
}
