// The extended types, each switchable in store.redaction (docs/compliance.md says which are on by default
// and why): passport numbers, licence plates, WeChat and QQ ids after their cue words, street addresses, and
// names after cue words. They read the width-folded text (fold.ts); shapes follow the issuing rules cited
// at each, and where a shape alone is too common (a QQ number is any 5-12 digits, a name any two Han
// characters) only what follows a cue word counts.

import { address } from './address.js';
import { cueBefore } from './cues.js';
import type { Extended } from './detector.js';
import { name } from './names.js';
import { GAP, spans } from './pattern.js';

export type ExtendedType = 'passport' | 'plate' | 'wechat' | 'qq' | 'address' | 'name';

// ---- Passports: PRC passports G/E + 8 digits, E + letter + 7 (ICAO 9303 MRZ, I and O not used); after a
// cue word also other documents' letter + 7-8 digits (Hong Kong/Macau permits C..., foreign passports).
const PASSPORT_BARE = /(?<![A-Za-z0-9])(?:[EG]\d{8}|E[A-HJ-NP-Z]\d{7})(?![A-Za-z0-9])/g;
const PASSPORT_CUED = new RegExp(`(?:护照|passport|通行证|旅行证)${GAP}([A-Za-z]{1,2}\\d{7,8})(?![A-Za-z0-9])`, 'gi');

const passport: Extended = {
  label: 'PASSPORT',
  defaultOn: true,
  mayMatch: (s) => s.longestDigitRun >= 7,
  // A bare one after a code cue (型号G12345678, 订单E12345678) is a model or order number.
  find: (s) => [
    ...spans(PASSPORT_BARE, s.folded).filter((m) => cueBefore(s.folded, m.start) !== 'code'),
    ...spans(PASSPORT_CUED, s.folded, 1),
  ],
};

// ---- Licence plates (GA 36-2018): province abbreviation, the office's letter, an optional dot, then 5
// characters (at least 3 digits: serials are mostly digits) or a new-energy 6: D/F + letter-or-digit + 4
// digits (small), 5 digits + D/F (large).
const PLATE = new RegExp(
  '[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-HJ-NP-Za-hj-np-z][·• .-]?' +
    '(?:[DFdf][A-HJ-NP-Za-hj-np-z0-9]\\d{4}|\\d{5}[DFdf]|(?=(?:[A-Za-z]?\\d){3})[A-HJ-NP-Za-hj-np-z0-9]{5})(?![A-Za-z0-9])',
  'g',
);

const plate: Extended = {
  label: 'PLATE',
  defaultOn: true,
  mayMatch: (s) => s.longestDigitRun >= 3,
  find: (s) => spans(PLATE, s.folded),
};

// ---- WeChat: a chosen id is 6-20 letters, digits, _ and -, starting with a letter (WeChat's rule); ids
// WeChat assigned start wxid_. QQ numbers are 5-12 digits from 1-9 (Tencent issues them in sequence). Both
// only after their cue words: alone, such strings are product codes and quantities.
const WECHAT = new RegExp(
  `(?:微信|weixin|wechat|vx|wx|v信|威信|薇信|VX|WX)${GAP}([A-Za-z][-_A-Za-z0-9]{5,19})(?![-_A-Za-z0-9@.])|(?<![A-Za-z0-9])(wxid_[a-z0-9]{8,24})(?![A-Za-z0-9])`,
  'gi',
);
const QQ = new RegExp(`(?:QQ|扣扣|企鹅)${GAP}([1-9]\\d{4,11})(?![0-9@])`, 'gi');

const wechat: Extended = {
  label: 'WECHAT',
  defaultOn: true,
  mayMatch: (s) => /微信|w[xe]|v[x信]|威信|薇信/i.test(s.folded),
  find: (s) => {
    const out: Array<{ start: number; end: number }> = [];
    WECHAT.lastIndex = 0;
    for (let m = WECHAT.exec(s.folded); m !== null; m = WECHAT.exec(s.folded)) {
      const value = m[1] ?? m[2]!;
      const start = m.index + m[0].length - value.length;
      out.push({ start, end: start + value.length });
    }
    return out;
  },
};

const qq: Extended = {
  label: 'QQ',
  defaultOn: true,
  mayMatch: (s) => /qq|扣扣|企鹅/i.test(s.folded),
  find: (s) => spans(QQ, s.folded, 1),
};

export const EXTENDED_DETECTORS: Record<ExtendedType, Extended> = { passport, plate, wechat, qq, address, name };
