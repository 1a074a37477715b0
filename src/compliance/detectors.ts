/*
 * Detectors of personal data in free text, and the redaction that replaces what they find with typed
 * placeholders. Pure functions: no I/O, no clock unless passed in.
 *
 * Check digits keep false positives down: a PRC resident identity number must carry a valid ISO 7064
 * MOD 11-2 check character, a known province code and a plausible birth date; a bank card number must pass
 * the Luhn check and start like a card (2-6). Phone numbers have no checksum, so their shapes are strict:
 * an international number written with its leading "+", or a mainland-China mobile number (1[3-9] and 9 more
 * digits), either not touching other digits or letters.
 */

export interface Match {
  /** The placeholder label without brackets: EMAIL, PHONE, CN_ID, CARD, or a custom label. */
  label: string;
  start: number;
  end: number;
}

export interface Detector {
  label: string;
  /** Cheap test first: false means the text certainly holds no match (most chat messages). */
  mayMatch(text: string): boolean;
  find(text: string): Array<{ start: number; end: number }>;
}

export type BuiltinDetector = 'email' | 'cnId' | 'card' | 'phone';

export interface CustomDetectorSpec {
  label: string;
  pattern: string;
  flags?: string | undefined;
}

export interface DetectorSettings {
  email?: boolean;
  phone?: boolean;
  cnId?: boolean;
  card?: boolean;
  custom?: CustomDetectorSpec[];
}

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

function countDigits(text: string, atLeast: number): boolean {
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57 && ++n >= atLeast) return true;
  }
  return false;
}

/** Luhn (mod 10) over a string of digits. */
export function luhnValid(digits: string): boolean {
  let sum = 0;
  let double = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return false;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum % 10 === 0;
}

const CN_ID_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CN_ID_CHECK = '10X98765432';
/** First two digits of a PRC resident identity number: the province-level division. */
const CN_PROVINCES = new Set([
  11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
  83,
]);

/** The ISO 7064 MOD 11-2 check character of the first 17 digits. */
export function cnIdCheckChar(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (first17.charCodeAt(i) - 48) * CN_ID_WEIGHTS[i]!;
  return CN_ID_CHECK[sum % 11]!;
}

/** An 18-character PRC resident identity number: province, a real birth date not in the future, check character. */
export function cnIdValid(id: string, today: Date = new Date()): boolean {
  if (!/^\d{17}[\dX]$/i.test(id)) return false;
  if (!CN_PROVINCES.has(Number(id.slice(0, 2)))) return false;
  const year = Number(id.slice(6, 10));
  const month = Number(id.slice(10, 12));
  const day = Number(id.slice(12, 14));
  if (year < 1900 || month < 1 || month > 12 || day < 1) return false;
  const birth = new Date(Date.UTC(year, month - 1, day));
  if (birth.getUTCMonth() !== month - 1 || birth.getUTCDate() !== day) return false;
  if (birth.getTime() > today.getTime()) return false;
  return cnIdCheckChar(id.slice(0, 17)) === id[17]!.toUpperCase();
}

const EMAIL_RE =
  /(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,63})@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])/g;

export const emailDetector: Detector = {
  label: 'EMAIL',
  mayMatch: (text) => text.includes('@'),
  find: (text) => [...regexMatches(EMAIL_RE, text)].map((m) => ({ start: m.index, end: m.index + m[0].length })),
};

const CN_ID_RE = /(?<![0-9A-Za-z])\d{17}[0-9Xx](?![0-9A-Za-z])/g;

export function cnIdDetector(today: () => Date = () => new Date()): Detector {
  return {
    label: 'CN_ID',
    mayMatch: (text) => countDigits(text, 17),
    find: (text) =>
      [...regexMatches(CN_ID_RE, text)]
        .filter((m) => cnIdValid(m[0], today()))
        .map((m) => ({ start: m.index, end: m.index + m[0].length })),
  };
}

// 13-19 digits, optionally in groups split by one space or one dash (the same separator throughout).
const CARD_RE = /(?<![0-9A-Za-z-])[2-6]\d{12,18}(?![0-9A-Za-z])|(?<![0-9A-Za-z-])[2-6]\d{1,5}(?:([ -])\d{2,6}){2,5}(?![0-9A-Za-z]|[ -]\d)/g;

export const cardDetector: Detector = {
  label: 'CARD',
  mayMatch: (text) => countDigits(text, 13),
  find: (text) => {
    const out: Array<{ start: number; end: number }> = [];
    for (const m of regexMatches(CARD_RE, text)) {
      const separator = m[1];
      if (separator !== undefined && m[0].includes(separator === ' ' ? '-' : ' ')) continue;
      const digits = m[0].replace(/[ -]/g, '');
      if (digits.length < 13 || digits.length > 19 || !luhnValid(digits)) continue;
      out.push({ start: m.index, end: m.index + m[0].length });
    }
    return out;
  },
};

// +CC then groups of digits split by single spaces, dots, dashes or a parenthesised area code.
const INTL_PHONE_RE = /(?<![\w+])\+\d{1,3}(?:[ .-]?\(\d{1,4}\)|[ .-]?\d{1,5}){1,6}(?![\w])/g;
// Mainland-China mobile: 1[3-9]x xxxx xxxx, written together or split 3-4-4 by spaces or dashes, optionally after 86.
const CN_MOBILE_RE = /(?<![0-9A-Za-z+-])(?:86[ -]?)?1[3-9]\d(?:\d{8}|([ -])\d{4}\1\d{4})(?![0-9A-Za-z]|-\d)/g;

export const phoneDetector: Detector = {
  label: 'PHONE',
  mayMatch: (text) => countDigits(text, 8),
  find: (text) => {
    const out: Array<{ start: number; end: number }> = [];
    for (const m of regexMatches(INTL_PHONE_RE, text)) {
      const digits = m[0].replace(/\D/g, '').length;
      // E.164 allows at most 15 digits; fewer than 8 is a price or a code, not a phone number.
      if (digits >= 8 && digits <= 15) out.push({ start: m.index, end: m.index + m[0].length });
    }
    for (const m of regexMatches(CN_MOBILE_RE, text)) out.push({ start: m.index, end: m.index + m[0].length });
    return out;
  },
};

/** A label as placeholders use it: upper case letters, digits and underscores. */
export const LABEL_PATTERN = /^[A-Z][A-Z0-9_]{0,31}$/;

/** Compiles an operator's detector; throws with the reason when the pattern or label is unusable. */
export function customDetector(spec: CustomDetectorSpec): Detector {
  const label = spec.label.toUpperCase();
  if (!LABEL_PATTERN.test(label)) throw new Error(`label "${spec.label}" must be letters, digits and underscores, starting with a letter`);
  const flags = [...new Set(`${spec.flags ?? ''}g`.replace(/[^gimsuy]/g, ''))].join('');
  const re = new RegExp(spec.pattern, flags);
  if (re.test('')) throw new Error(`pattern /${spec.pattern}/ matches the empty string`);
  return {
    label,
    mayMatch: () => true,
    find: (text) => [...regexMatches(re, text)].map((m) => ({ start: m.index, end: m.index + m[0].length })),
  };
}

/**
 * The detectors in priority order (an earlier one wins an overlap): e-mail first (addresses hold digits),
 * then identity numbers (18 digits that could pass a Luhn check), cards, phones, then custom ones.
 */
export function buildDetectors(settings: DetectorSettings = {}, today?: () => Date): Detector[] {
  const out: Detector[] = [];
  if (settings.email !== false) out.push(emailDetector);
  if (settings.cnId !== false) out.push(cnIdDetector(today));
  if (settings.card !== false) out.push(cardDetector);
  if (settings.phone !== false) out.push(phoneDetector);
  for (const spec of settings.custom ?? []) out.push(customDetector(spec));
  return out;
}

/** Every match, without overlaps (priority order, then the earlier start), sorted by position. */
export function findSensitive(text: string, detectors: readonly Detector[]): Match[] {
  const taken: Match[] = [];
  for (const detector of detectors) {
    if (!detector.mayMatch(text)) continue;
    for (const span of detector.find(text)) {
      if (taken.some((t) => span.start < t.end && t.start < span.end)) continue;
      taken.push({ label: detector.label, start: span.start, end: span.end });
    }
  }
  return taken.sort((a, b) => a.start - b.start);
}

/** The text with each match replaced by [LABEL]; the same string when nothing matched. */
export function redactText(text: string, detectors: readonly Detector[]): string {
  const matches = findSensitive(text, detectors);
  if (matches.length === 0) return text;
  let out = '';
  let at = 0;
  for (const m of matches) {
    out += `${text.slice(at, m.start)}[${m.label}]`;
    at = m.end;
  }
  return out + text.slice(at);
}
