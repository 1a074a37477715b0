/*
 * Detectors of personal data in free text, and the redaction that replaces what they find with typed
 * placeholders. Pure functions: no I/O, no clock unless passed in.
 *
 * The text is folded to ASCII width once (fold.ts: １３８… and ＠ are found like 138… and @), then each
 * detector reads it. Numbers are read by their numbering rules (numbers.ts): check characters for identity
 * numbers (GB 11643) and cards (Luhn), allocated segments and area codes for phones, and the cue words
 * before a number where the digits alone are ambiguous (cues.ts). E-mail addresses: email.ts.
 */

import type { Detector, Extended, Match, Scan } from './detector.js';
import { foldWidth } from './fold.js';
import { findEmails } from './email.js';
import { findNumbers, type NumberMatch } from './numbers.js';
import { EXTENDED_DETECTORS, type ExtendedType } from './extended.js';

export { luhnValid, cnIdCheckChar, cnIdValid } from './checks.js';

export type { Detector, Match, Scan };

export type BuiltinDetector = 'email' | 'cnId' | 'card' | 'phone';

export interface CustomDetectorSpec {
  label: string;
  pattern: string;
  flags?: string | undefined;
}

export type DetectorSettings = {
  email?: boolean;
  phone?: boolean;
  cnId?: boolean;
  card?: boolean;
  custom?: CustomDetectorSpec[];
} & { [type in ExtendedType]?: boolean };

function* regexMatches(re: RegExp, text: string): Generator<RegExpExecArray> {
  re.lastIndex = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    yield m;
  }
}

export const emailDetector: Detector = {
  label: 'EMAIL',
  mayMatch: (scan) => scan.folded.includes('@'),
  find: (scan) => findEmails(scan.folded).map((m) => ({ ...m, kind: 'email' })),
};

const NUMBER_LABEL: Record<NumberMatch['kind'], { label: string; setting: 'phone' | 'cnId' | 'card' }> = {
  mobile: { label: 'PHONE', setting: 'phone' },
  landline: { label: 'PHONE', setting: 'phone' },
  intl: { label: 'PHONE', setting: 'phone' },
  id18: { label: 'CN_ID', setting: 'cnId' },
  id15: { label: 'CN_ID', setting: 'cnId' },
  card: { label: 'CARD', setting: 'card' },
};

/**
 * Phones, identity numbers and cards in one pass (they compete for the same digits: an 18-digit identity
 * number must not be read as a card, a date before a phone must not join it). A kind switched off is still
 * recognised, so its digits are not taken for another kind, and left in the text.
 */
export function numberDetector(
  settings: Pick<DetectorSettings, 'phone' | 'cnId' | 'card'> = {},
  today: () => Date = () => new Date(),
): Detector {
  const on = { phone: settings.phone !== false, cnId: settings.cnId !== false, card: settings.card !== false };
  return {
    label: 'NUMBER',
    mayMatch: (scan) => scan.digits >= 7,
    find: (scan) =>
      findNumbers(scan.folded, today())
        .filter((m) => on[NUMBER_LABEL[m.kind].setting])
        .map((m) => ({ start: m.start, end: m.end, kind: m.kind, label: NUMBER_LABEL[m.kind].label })),
  };
}

/** A label as placeholders use it: upper case letters, digits and underscores. */
export const LABEL_PATTERN = /^[A-Z][A-Z0-9_]{0,31}$/;

/** Compiles an operator's detector; throws with the reason when the pattern or label is unusable. It reads the text as written. */
export function customDetector(spec: CustomDetectorSpec): Detector {
  const label = spec.label.toUpperCase();
  if (!LABEL_PATTERN.test(label)) throw new Error(`label "${spec.label}" must be letters, digits and underscores, starting with a letter`);
  const flags = [...new Set(`${spec.flags ?? ''}g`.replace(/[^gimsuy]/g, ''))].join('');
  const re = new RegExp(spec.pattern, flags);
  if (re.test('')) throw new Error(`pattern /${spec.pattern}/ matches the empty string`);
  return {
    label,
    mayMatch: () => true,
    find: (scan) => [...regexMatches(re, scan.text)].map((m) => ({ start: m.index, end: m.index + m[0].length })),
  };
}

/**
 * The detectors in priority order (an earlier one wins an overlap): e-mail first (addresses hold digits),
 * then numbers (phones, identity numbers, cards), then custom ones. `today` (the clock by default) bounds
 * identity numbers' birth dates.
 */
export function buildDetectors(settings: DetectorSettings = {}, today?: () => Date): Detector[] {
  const out: Detector[] = [];
  if (settings.email !== false) out.push(emailDetector);
  if (settings.phone !== false || settings.cnId !== false || settings.card !== false) out.push(numberDetector(settings, today));
  for (const [type, detector] of Object.entries(EXTENDED_DETECTORS) as Array<[ExtendedType, Extended]>) {
    if (settings[type] ?? detector.defaultOn) out.push(detector);
  }
  for (const spec of settings.custom ?? []) out.push(customDetector(spec));
  return out;
}

/** The text, its folded copy and its digit counts, made once per message for all detectors. */
export function scanOf(text: string): Scan {
  const folded = foldWidth(text);
  let digits = 0;
  let run = 0;
  let longestDigitRun = 0;
  for (let i = 0; i < folded.length; i++) {
    const c = folded.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      digits++;
      if (++run > longestDigitRun) longestDigitRun = run;
    } else run = 0;
  }
  return { text, folded, digits, longestDigitRun };
}

function overlaps(taken: readonly Match[], span: { start: number; end: number }): boolean {
  for (const t of taken) if (span.start < t.end && t.start < span.end) return true;
  return false;
}

/** Every match, without overlaps (priority order, then the earlier start), sorted by position. */
export function findSensitive(text: string, detectors: readonly Detector[]): Match[] {
  if (detectors.length === 0 || text.length === 0) return [];
  const scan = scanOf(text);
  const taken: Match[] = [];
  for (const detector of detectors) {
    if (!detector.mayMatch(scan)) continue;
    for (const span of detector.find(scan)) {
      if (overlaps(taken, span)) continue;
      taken.push({
        label: span.label ?? detector.label,
        kind: span.kind ?? detector.label.toLowerCase(),
        start: span.start,
        end: span.end,
      });
    }
  }
  return taken.sort((a, b) => a.start - b.start);
}

/** The text with each match replaced by what `placeholder` gives for it; the same string when nothing matched. */
export function replaceMatches(text: string, matches: readonly Match[], placeholder: (m: Match) => string): string {
  if (matches.length === 0) return text;
  let out = '';
  let at = 0;
  for (const m of matches) {
    out += text.slice(at, m.start) + placeholder(m);
    at = m.end;
  }
  return out + text.slice(at);
}

const bracketed = (m: Match) => `[${m.label}]`;

/** The text with each match replaced by [LABEL]; the same string when nothing matched. */
export function redactText(text: string, detectors: readonly Detector[]): string {
  return replaceMatches(text, findSensitive(text, detectors), bracketed);
}
