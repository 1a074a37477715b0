// Precision and recall of a detector's findings against the corpus's labelled spans. A hit is a finding of
// the right type on exactly the labelled text; a finding anywhere else is a false positive of the type the
// detector claimed (on a negative span or on plain words alike), and a labelled span not hit exactly is a
// miss. A finding that covers a span only in part is both.

import type { CorpusMessage } from './generate.js';

export interface Finding {
  type: string;
  start: number;
  end: number;
}

export interface TypeScore {
  tp: number;
  fp: number;
  fn: number;
  precision: number;
  recall: number;
}

export interface Score {
  byType: Map<string, TypeScore>;
  /** One line per false positive or miss, with the message, for reading what went wrong. */
  errors: string[];
  /** False positives by the negative type they fell on ('text' when on no labelled span). */
  falsePositivesOn: Map<string, number>;
}

export function score(corpus: readonly CorpusMessage[], find: (text: string) => Finding[]): Score {
  const byType = new Map<string, TypeScore>();
  const of = (type: string) => {
    let s = byType.get(type);
    if (!s) byType.set(type, (s = { tp: 0, fp: 0, fn: 0, precision: 1, recall: 1 }));
    return s;
  };
  const errors: string[] = [];
  const falsePositivesOn = new Map<string, number>();
  for (const message of corpus) {
    const positives = message.spans.filter((s) => s.positive);
    for (const s of positives) of(s.type);
    const hit = new Set<number>();
    for (const f of find(message.text)) {
      const i = positives.findIndex((s) => s.start === f.start && s.end === f.end && s.type === f.type);
      if (i >= 0 && !hit.has(i)) {
        hit.add(i);
        of(f.type).tp++;
        continue;
      }
      of(f.type).fp++;
      const under = message.spans.find((s) => s.start < f.end && f.start < s.end);
      const on = under ? (under.positive ? `${under.type} (as ${f.type})` : under.type) : 'text';
      falsePositivesOn.set(on, (falsePositivesOn.get(on) ?? 0) + 1);
      errors.push(`false ${f.type} "${message.text.slice(f.start, f.end)}" on ${on} in: ${message.text}`);
    }
    positives.forEach((s, i) => {
      if (hit.has(i)) return;
      of(s.type).fn++;
      errors.push(`missed ${s.type} "${message.text.slice(s.start, s.end)}" in: ${message.text}`);
    });
  }
  for (const s of byType.values()) {
    s.precision = s.tp + s.fp === 0 ? 1 : s.tp / (s.tp + s.fp);
    s.recall = s.tp + s.fn === 0 ? 1 : s.tp / (s.tp + s.fn);
  }
  return { byType, errors, falsePositivesOn };
}

/** A table of the scores, one line per type in the order given, for test output and docs. */
export function formatScore(s: Score, types: readonly string[]): string {
  const lines = ['type        spans   TP   FP   FN  precision  recall'];
  for (const type of types) {
    const t = s.byType.get(type);
    if (!t) continue;
    const cells = [t.tp + t.fn, t.tp, t.fp, t.fn].map((n) => String(n).padStart(4));
    lines.push(
      `${type.padEnd(10)}  ${cells[0]} ${cells[1]} ${cells[2]} ${cells[3]}  ${t.precision.toFixed(3).padStart(9)}  ${t.recall.toFixed(3).padStart(6)}`,
    );
  }
  return lines.join('\n');
}
