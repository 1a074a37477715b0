// A masked upstream's event stream on its way to the client (upstreams[].mask): each event's text deltas get
// their placeholders restored (compliance/masking.ts), also when a placeholder arrives split over several
// events, as a model writes it token by token. Only the tail that could start a placeholder is held back,
// per choice and field, and released with the next delta, the choice's finish or [DONE]. Events without a
// "<" pass as they are, bytes untouched, while nothing is held. Used only for masked upstreams.

import { StreamRestorer, type Masker } from '../compliance/masking.js';
import { SseSplitter } from './sse.js';

/** Delta fields that carry text the client reads. */
const TEXT_FIELDS = ['content', 'reasoning_content', 'refusal'] as const;

type Delta = Record<string, unknown> & { tool_calls?: Array<{ index?: number; function?: { arguments?: unknown } }> };
type Choice = { index?: number; delta?: Delta; finish_reason?: string | null };

export class MaskedStream {
  private readonly splitter = new SseSplitter();
  /** Keyed "choice:field" or "choice:tool:index". */
  private readonly restorers = new Map<string, StreamRestorer>();

  constructor(private readonly masker: Masker) {}

  private holding(): boolean {
    for (const r of this.restorers.values()) if (r.holding) return true;
    return false;
  }

  private restorer(key: string): StreamRestorer {
    let r = this.restorers.get(key);
    if (!r) this.restorers.set(key, (r = new StreamRestorer(this.masker)));
    return r;
  }

  /** The bytes to send for this chunk (whole events), or null for none yet. */
  push(chunk: Buffer): Buffer | null {
    const out: Buffer[] = [];
    for (const event of this.splitter.push(chunk)) {
      const data = event.data;
      if (data === null) {
        out.push(event.raw);
      } else if (data === '[DONE]') {
        const rest = this.flushAll();
        if (rest) out.push(rest);
        out.push(event.raw);
      } else if (!this.holding() && !data.includes('<') && !data.includes('\\u003c')) {
        out.push(event.raw); // the common event: nothing to restore, its bytes as they came
      } else {
        out.push(this.restoreEvent(data));
      }
    }
    if (out.length === 0) return null;
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  private restoreEvent(data: string): Buffer {
    let parsed: { choices?: unknown };
    try {
      parsed = JSON.parse(data) as { choices?: unknown };
    } catch {
      return Buffer.from(`data: ${this.masker.restore(data)}\n\n`);
    }
    if (parsed === null || typeof parsed !== 'object' || !Array.isArray(parsed.choices)) {
      return Buffer.from(`data: ${JSON.stringify(this.masker.restoreRecord(parsed))}\n\n`);
    }
    for (const choice of parsed.choices as Choice[]) {
      const i = choice.index ?? 0;
      const delta = (choice.delta ??= {});
      for (const field of TEXT_FIELDS) {
        if (typeof delta[field] === 'string') delta[field] = this.restorer(`${i}:${field}`).push(delta[field]);
      }
      for (const call of delta.tool_calls ?? []) {
        const fn = call.function;
        if (fn && typeof fn.arguments === 'string') fn.arguments = this.restorer(`${i}:tool:${call.index ?? 0}`).push(fn.arguments);
      }
      if (choice.finish_reason) this.flushChoice(i, delta);
    }
    return Buffer.from(`data: ${JSON.stringify(parsed)}\n\n`);
  }

  /** A finished choice: what its restorers still hold goes out in its last event. */
  private flushChoice(index: number, delta: Delta): void {
    const prefix = `${index}:`;
    for (const [key, r] of this.restorers) {
      if (!key.startsWith(prefix) || !r.holding) continue;
      const rest = r.flush();
      const field = key.slice(prefix.length);
      if (field.startsWith('tool:')) {
        const toolIndex = Number(field.slice(5));
        const calls = (delta.tool_calls ??= []);
        const call = calls.find((c) => (c.index ?? 0) === toolIndex);
        if (call?.function && typeof call.function.arguments === 'string') call.function.arguments += rest;
        else calls.push({ index: toolIndex, function: { arguments: rest } });
      } else {
        delta[field] = (typeof delta[field] === 'string' ? delta[field] : '') + rest;
      }
    }
  }

  /** Before [DONE]: one event with whatever is still held, for choices that never sent a finish. */
  private flushAll(): Buffer | null {
    if (!this.holding()) return null;
    const byChoice = new Map<number, Delta>();
    for (const key of this.restorers.keys()) {
      const index = Number(key.slice(0, key.indexOf(':')));
      if (!byChoice.has(index)) byChoice.set(index, {});
    }
    const choices: Choice[] = [];
    for (const [index, delta] of byChoice) {
      this.flushChoice(index, delta);
      if (Object.keys(delta).length > 0) choices.push({ index, delta, finish_reason: null });
    }
    return Buffer.from(`data: ${JSON.stringify({ object: 'chat.completion.chunk', choices })}\n\n`);
  }
}
