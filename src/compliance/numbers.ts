// Numbers in free text, classified by the numbering rules: mobile and landline phones, resident identity
// numbers (18 and 15 digits), bank cards, international phone numbers. One pass finds each run of digit
// groups as people type them (spaces, dashes, dots, a bracketed area code, a +86/0086/86 prefix, an X check
// character), then reads the longest stretch of groups from the left that is a number of some kind; so
// "2024-05-17 138 1234 5678" is a date (left alone) and a phone. Works on width-folded text (fold.ts).

import { cardPrefixValid, cnAreaCodeLength, cnId15Valid, cnIdValid, cnMobileValid, cnSubscriberValid, luhnValid } from './checks.js';
import { cueBefore, type Cue } from './cues.js';

export type NumberKind = 'mobile' | 'landline' | 'intl' | 'id18' | 'id15' | 'card';

export interface NumberMatch {
  kind: NumberKind;
  start: number;
  end: number;
}

interface Group {
  start: number;
  end: number;
  digits: string;
  /** What stood between this group and the previous one ('' for the first or when touching). */
  sep: string;
  plus: boolean;
  paren: boolean;
}

const isDigit = (c: number) => c >= 48 && c <= 57;
const isAsciiWord = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;

/** A group at i: digits, optionally "+digits", optionally wrapped in brackets. Returns null when none starts here. */
function readGroup(t: string, i: number, sep: string): Group | null {
  let p = i;
  let paren = false;
  if (t.charCodeAt(p) === 40) {
    paren = true;
    p++;
  }
  let plus = false;
  if (t.charCodeAt(p) === 43) {
    plus = true;
    p++;
  }
  const digitsStart = p;
  while (p < t.length && isDigit(t.charCodeAt(p))) p++;
  if (p === digitsStart) return null;
  let digits = t.slice(digitsStart, p);
  if (paren) {
    // A bracketed group is an area code or a country code ((021), (+86)); "(183-..." or "(13812345678)" is a
    // bracket around the text, not part of the number.
    if (t.charCodeAt(p) !== 41 || p - digitsStart > 4) return null;
    p++;
  } else if ((t.charCodeAt(p) === 88 || t.charCodeAt(p) === 120) && !isAsciiWord(t.charCodeAt(p + 1) || 0)) {
    digits += 'X'; // the check character of an identity number
    p++;
  }
  return { start: i, end: p, digits, sep, plus, paren };
}

/** The separator at i before another group: one space, dash or dot, two spaces, or " - "; its length, or 0. */
function separatorAt(t: string, i: number): number {
  const c = t.charCodeAt(i);
  if (c === 45 || c === 46) return 1;
  if (c !== 32) return 0;
  const d = t.charCodeAt(i + 1);
  if (d === 32) return 2;
  if (d === 45 && t.charCodeAt(i + 2) === 32) return 3;
  return 1;
}

function readRun(t: string, from: number): { groups: Group[]; end: number } {
  const groups: Group[] = [];
  let at = from;
  let sep = '';
  for (;;) {
    const g = readGroup(t, at, sep);
    if (!g || (groups.length > 0 && g.plus && sep === '')) break;
    if (g.digits.endsWith('X') && groups.length > 0 && sep === '') break;
    groups.push(g);
    at = g.end;
    if (g.digits.endsWith('X')) break;
    const n = separatorAt(t, at);
    const next = t.charCodeAt(at + n);
    const startsGroup = isDigit(next) || next === 40 || (next === 43 && n > 0);
    if (n > 0 && startsGroup) {
      sep = t.slice(at, at + n);
      at += n;
    } else if (n === 0 && g.paren && (isDigit(next) || next === 40)) {
      sep = ''; // "(021)65529988", "(+86)138..."
    } else break;
  }
  return { groups, end: at };
}

/** The characters a run can hold besides digits: ( ) + - . space X x. */
const RUN_CHAR = new Uint8Array(128);
for (const ch of '()+-. Xx') RUN_CHAR[ch.charCodeAt(0)] = 1;

/** The group sizes as one number (5 bits a group, the first group highest): 3-4-4 is shape(3, 4, 4). No strings allocated. */
function sizes(gs: readonly Group[], from = 0): number {
  let s = 0;
  for (let i = from; i < gs.length; i++) s = s * 32 + gs[i]!.digits.length;
  return s;
}
const shape = (...n: number[]) => n.reduce((s, k) => s * 32 + k, 0);

const MOBILE_SHAPES = new Set([shape(11), shape(3, 4, 4), shape(3, 8), shape(7, 4)]);
const ID18_SHAPES = new Set([shape(18), shape(6, 8, 4), shape(6, 4, 4, 4), shape(3, 3, 4, 4, 4)]);
const ID15_SHAPES = new Set([shape(15), shape(6, 6, 3), shape(6, 9)]);

function cardShape(gs: readonly Group[]): boolean {
  if (gs.length === 1) return true;
  if (gs.some((g, i) => (i > 0 && g.sep !== gs[1]!.sep) || g.paren || g.plus)) return false;
  const s = sizes(gs);
  if (s === shape(6, 13) || s === shape(6, 10) || s === shape(4, 6, 5)) return true; // BIN + rest; Amex embossing
  return gs.every((g, i) => (i === gs.length - 1 ? g.digits.length >= 1 && g.digits.length <= 4 : g.digits.length === 4));
}

/** A country prefix at the start of the groups: how many digits of the joined digits it takes, and whether it was +86/0086/86. */
function chinaPrefix(gs: readonly Group[], all: string): number {
  const first = gs[0]!;
  if (first.plus) return all.startsWith('86') ? 2 : -1;
  if (all.startsWith('0086')) return first.digits === '0086' || first.digits.length > 4 ? 4 : 0;
  if (first.digits === '86' && gs.length > 1) return 2;
  if (gs.length === 1 && all.length === 13 && all.startsWith('861')) return 2;
  return 0;
}

const LOCAL_SHAPES = new Set([shape(8), shape(7), shape(4, 4), shape(3, 4), shape(4, 3)]);

/**
 * Area code, subscriber number and an optional extension (the last group after a dash): the area code in a
 * group of its own ((021) ..., 0755-..., +86 10 ...) or joined to the whole number (02165529988).
 * rest: the groups after a separate country prefix; national: the digits after the prefix.
 */
function landline(rest: readonly Group[], national: string, prefixed: boolean): boolean {
  const trunk = national.charCodeAt(0) === 48;
  if (!trunk && !prefixed) return false;
  const withTrunk = trunk ? national : `0${national}`; // +86 10 ... drops the trunk 0
  const area = cnAreaCodeLength(withTrunk);
  if (area === 0) return false;
  const areaDigits = trunk ? area : area - 1;
  const last = rest[rest.length - 1]!;
  const tries: Array<readonly Group[]> = [rest];
  if (rest.length >= 2 && last.sep === '-' && last.digits.length <= 5) tries.push(rest.slice(0, -1));
  for (const used of tries) {
    let digits = used[0]!.digits;
    for (let i = 1; i < used.length; i++) digits += used[i]!.digits;
    const local = digits.slice(areaDigits);
    if (!cnSubscriberValid(local, area)) continue;
    if (used.length === 1 && !used[0]!.paren) return true;
    if (used[0]!.digits.length === areaDigits && LOCAL_SHAPES.has(sizes(used, 1))) return true;
  }
  return false;
}

// The cue before the run being read, looked up only when the digits leave the kind open (most numbers never
// ask), at most once per run. Module state instead of a closure per run: findNumbers is synchronous.
let cueText = '';
let cueAt = -1;
let cueFound: Cue | null | undefined;

function cueOf(): Cue | null {
  if (cueAt < 0) return null;
  if (cueFound === undefined) cueFound = cueBefore(cueText, cueAt);
  return cueFound;
}

function classify(gs: readonly Group[], withCue: boolean, wholeRun: boolean, today: Date): NumberKind | null {
  let all = gs[0]!.digits;
  for (let i = 1; i < gs.length; i++) all += gs[i]!.digits;
  if (all.length > 24) return null; // longer than any kind with its prefix and extension
  if (all.includes('X')) {
    return all.length === 18 && ID18_SHAPES.has(sizes(gs)) && cnIdValid(all, today) ? 'id18' : null;
  }
  const prefix = chinaPrefix(gs, all);
  if (prefix < 0) {
    // +CC other than China: E.164 numbers have at most 15 digits; fewer than 8 is a code or a price.
    return all.length >= 8 && all.length <= 15 && gs.length <= 7 ? 'intl' : null;
  }
  const national = all.slice(prefix);
  if (prefix > 0) {
    const separate = gs[0]!.digits.length === prefix;
    let rest = separate ? gs.slice(1) : [{ ...gs[0]!, digits: gs[0]!.digits.slice(prefix) }, ...gs.slice(1)];
    // +86 (0)21 ...: the bracketed trunk 0 belongs to the area code that follows it.
    if (rest.length > 1 && rest[0]!.paren && rest[0]!.digits === '0')
      rest = [{ ...rest[1]!, digits: `0${rest[1]!.digits}` }, ...rest.slice(2)];
    if (rest.length === 0) return null;
    if (national.length === 11 && MOBILE_SHAPES.has(sizes(rest)) && cnMobileValid(national)) return 'mobile';
    return landline(rest, national, true) ? 'landline' : null;
  }
  if (all.length === 11 && MOBILE_SHAPES.has(sizes(gs)) && cnMobileValid(all)) return 'mobile';
  if (landline(gs, all, false)) return 'landline';
  const cue = withCue ? cueOf() : null;
  if (cue === 'code' && !wholeRun) return null;
  if (all.length === 18 && ID18_SHAPES.has(sizes(gs)) && cnIdValid(all, today)) return 'id18';
  if (cue === 'code') return null;
  if (all.length === 15 && !(cue === 'card' && luhnValid(all)) && ID15_SHAPES.has(sizes(gs)) && cnId15Valid(all)) return 'id15';
  if (all.length >= 13 && all.length <= 19 && cardShape(gs)) {
    // Chinese bank cards are 16-19 digits; 13-15 (old Visa, Amex) only when the customer says it is a card.
    const long = all.length >= 16;
    if (cue === 'card' && (long || luhnValid(all))) return 'card';
    if (long && cardPrefixValid(all) && luhnValid(all)) return 'card';
  }
  // A subscriber number without its area code, when the customer says it is a phone.
  if (cue === 'phone' && LOCAL_SHAPES.has(sizes(gs)) && cnSubscriberValid(all, 4)) return 'landline';
  return null;
}

/**
 * Every phone, identity and card number in the (width-folded) text, left to right, without overlaps. `today`
 * bounds identity numbers' birth dates.
 */
export function findNumbers(t: string, today: Date = new Date()): NumberMatch[] {
  const out: NumberMatch[] = [];
  const n = t.length;
  for (let i = 0; i < n; i++) {
    const c = t.charCodeAt(i);
    if (!isDigit(c) && c !== 43 && c !== 40) continue;
    // The shortest number of any kind is a 7-digit subscriber number. A run is made of digits, brackets, +,
    // X and separators only; where those hold fewer than 7 digits (prices, dates, times, quantities: most
    // runs) no number starts, and nothing is allocated for them.
    let digitsAhead = 0;
    let stretch = i;
    for (; stretch < n; stretch++) {
      const d = t.charCodeAt(stretch);
      if (isDigit(d)) digitsAhead++;
      else if (d >= 128 || RUN_CHAR[d] === 0) break;
    }
    if (digitsAhead < 7) {
      i = stretch;
      continue;
    }
    const { groups, end } = readRun(t, i);
    if (groups.length === 0) continue;
    // Digits joined to Latin letters or an @ are part of a code (SF1234..., QQ6941700, v2.3.11) or an
    // address: the stretch touching them is left alone, what follows after a space is read on.
    const before = i > 0 ? t.charCodeAt(i - 1) : 0;
    const after = t.charCodeAt(end) || 0;
    const attachedBefore =
      isAsciiWord(before) ||
      before === 64 ||
      ((before === 45 || before === 46 || before === 47) && i > 1 && isAsciiWord(t.charCodeAt(i - 2)));
    const attachedAfter = isAsciiWord(after) || after === 64;
    const spaceAt = (g: number) => groups[g]!.sep.charCodeAt(0) === 32;
    let g = 0;
    if (attachedBefore) for (g = 1; g < groups.length && !spaceAt(g); g++);
    let limit = groups.length;
    if (attachedAfter) for (limit = groups.length - 1; limit > 0 && !spaceAt(limit); limit--);
    cueText = t;
    cueAt = groups[0]!.start;
    cueFound = undefined;
    while (g < limit) {
      let took = 0;
      // A number starts and ends at the run's ends or at a space: 400-548-6916 holds no 548-6916.
      for (let h = Math.min(limit, g + 8); h > g; h--) {
        if (h < groups.length && !spaceAt(h)) continue;
        const whole = g === 0 && h === groups.length;
        const kind = classify(whole ? groups : groups.slice(g, h), g === 0, whole, today);
        if (kind) {
          out.push({ kind, start: groups[g]!.start, end: groups[h - 1]!.end });
          took = h - g;
          break;
        }
      }
      g += took || 1;
      while (g < limit && !spaceAt(g)) g++;
    }
    i = Math.max(i, end - 1);
  }
  return out;
}
