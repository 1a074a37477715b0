// Masking for an upstream off the box (upstreams[].mask): before a request leaves, each piece of personal data
// becomes a numbered placeholder (<PHONE_1>), the same value the same placeholder for the whole client
// request (every round of a tool turn), and the placeholders in the reply are put back before the client
// gets it. The values stay in this process; the remote provider sees only placeholders.

import type { ChatMessage } from '../core/messages.js';
import { findSensitive, replaceMatches, type Detector, type Match } from './detectors.js';
import { foldWidth } from './fold.js';
import { rewriteRecord } from './records.js';
import { rewriteMessage } from './redact.js';

/** <LABEL_N>: labels are upper-case letters, digits and "_" (detectors.ts LABEL_PATTERN), N counts from 1. */
const PLACEHOLDER = /<([A-Z][A-Z0-9_]{0,31}_[1-9]\d{0,5})>/g;
/** The longest placeholder: "<" + a 32-character label + "_" + 6 digits + ">". */
const MAX_PLACEHOLDER = 41;
const NUMBER_LABELS = new Set(['PHONE', 'CN_ID', 'CARD', 'QQ']);

export class Masker {
  private readonly byKey = new Map<string, string>();
  private readonly values = new Map<string, string>();
  private readonly counts = new Map<string, number>();

  constructor(private readonly detectors: readonly Detector[]) {}

  /** How many values were masked so far (0: nothing to restore). */
  get size(): number {
    return this.values.size;
  }

  private placeholder(label: string, value: string): string {
    // One value, one placeholder, however it was written: 138 1234 5678 and 13812345678 are the same phone.
    const folded = foldWidth(value);
    const key = `${label}\u0000${NUMBER_LABELS.has(label) ? folded.replace(/[^0-9Xx]/g, '').toUpperCase() : folded}`;
    let name = this.byKey.get(key);
    if (name === undefined) {
      const n = (this.counts.get(label) ?? 0) + 1;
      this.counts.set(label, n);
      name = `${label}_${n}`;
      this.byKey.set(key, name);
      this.values.set(name, value);
    }
    return `<${name}>`;
  }

  /** The text with each value found replaced by its placeholder. */
  maskText(text: string): string {
    const matches = findSensitive(text, this.detectors);
    if (matches.length === 0) return text;
    return replaceMatches(text, matches, (m: Match) => this.placeholder(m.label, text.slice(m.start, m.end)));
  }

  /**
   * A message as it may leave: every text field masked (records.ts), a participant's name masked as a name,
   * and attachments replaced by placeholder parts (nothing can mask an image).
   */
  maskMessage(message: ChatMessage): ChatMessage {
    return rewriteMessage(message, (t) => this.maskText(t), {
      attachments: 'drop',
      participantName: (name) => this.placeholder('NAME', name),
      active: this.detectors.length > 0,
    });
  }

  /** The value a placeholder stands for (its name without brackets: PHONE_1), or undefined. */
  valueOf(name: string): string | undefined {
    return this.values.get(name);
  }

  /** The text with every placeholder of this masker put back; unknown ones (the model made them up) stay. */
  restore(text: string): string {
    if (this.values.size === 0 || !text.includes('<')) return text;
    return text.replace(PLACEHOLDER, (whole, name: string) => this.values.get(name) ?? whole);
  }

  /** A parsed JSON value (a whole reply) with every placeholder in its strings put back. */
  restoreRecord<T>(value: T): T {
    if (this.values.size === 0) return value;
    return rewriteRecord(value, (t) => this.restore(t), 'keep') as T;
  }
}

/**
 * Where a held-back tail starts: the last "<" after which the text could still grow into a placeholder
 * (a label of upper-case letters, digits and "_", then digits and ">"), or -1 when nothing needs holding.
 */
export function placeholderPrefixAt(text: string): number {
  const at = text.lastIndexOf('<');
  if (at < 0 || text.length - at >= MAX_PLACEHOLDER) return -1;
  for (let i = at + 1; i < text.length; i++) {
    const c = text.charCodeAt(i);
    const upper = c >= 65 && c <= 90;
    const digit = c >= 48 && c <= 57;
    if (i === at + 1 ? !upper : !(upper || digit || c === 95)) return -1;
  }
  return at;
}

/**
 * The placeholders of one streamed text (a choice's content, a tool call's arguments) restored as the
 * fragments arrive: a placeholder split across fragments (<PH | ONE_ | 1>) is still found, because only the
 * tail that could be the start of one is held back, and released with the next fragment or at the end.
 */
export class StreamRestorer {
  private held = '';

  constructor(private readonly masker: Masker) {}

  /** What can go out now of `fragment` (and what was held). */
  push(fragment: string): string {
    const text = this.held + fragment;
    const at = placeholderPrefixAt(text);
    if (at < 0) {
      this.held = '';
      return this.masker.restore(text);
    }
    this.held = text.slice(at);
    return this.masker.restore(text.slice(0, at));
  }

  /** What is still held (the stream ended): it was no placeholder, so it goes out as it is. */
  flush(): string {
    const out = this.held;
    this.held = '';
    return out;
  }

  get holding(): boolean {
    return this.held !== '';
  }
}
