// The redaction corpus: customer-service messages with labelled spans, made from the templates and the format
// generators with a seeded PRNG, so a seed always gives the same corpus. It knows nothing of the detectors in
// src/compliance/ (written first, from the formats' own specifications).
//
//   generateCorpus(seed, count) -> [{ text, spans: [{ type, start, end, positive }] }]
//
// A positive span is personal data a detector must replace, exactly that text (prefixes such as +86 and
// brackets around an area code included, cue words and surrounding punctuation excluded); a negative span
// is a value that must be left alone. Text outside any span holds no personal data.

import { address, passport, personName, plate, qqNumber, wechatId } from './extended-formats.js';
import { amount, date, ean13, hotline, maskedCard, orderNumber, otherCode, price, sku, time, trackingNumber } from './negative-formats.js';
import { bankCard, email, emailNeedsSpacing, landline, localLandline, mobile, residentId15, residentId18 } from './personal-formats.js';
import { Prng } from './prng.js';
import { TEMPLATES } from './templates.js';

export type PositiveType =
  'mobile' | 'landline' | 'id18' | 'id15' | 'card' | 'email' | 'passport' | 'plate' | 'wechat' | 'qq' | 'address' | 'name';
export type NegativeType = 'order' | 'tracking' | 'ean' | 'hotline' | 'price' | 'date' | 'time' | 'sku' | 'code' | 'masked' | 'amount';

export const CORE_TYPES: readonly PositiveType[] = ['mobile', 'landline', 'id18', 'id15', 'card', 'email'];
export const EXTENDED_TYPES: readonly PositiveType[] = ['passport', 'plate', 'wechat', 'qq', 'address', 'name'];

export interface Span {
  type: PositiveType | NegativeType;
  positive: boolean;
  start: number;
  end: number;
}

export interface CorpusMessage {
  text: string;
  spans: Span[];
}

type Slot = { type: PositiveType | NegativeType; positive: boolean; make: (r: Prng) => string };

const SLOTS: Record<string, Slot> = {
  mobile: { type: 'mobile', positive: true, make: mobile },
  landline: { type: 'landline', positive: true, make: landline },
  local: { type: 'landline', positive: true, make: localLandline },
  id18: { type: 'id18', positive: true, make: residentId18 },
  id15: { type: 'id15', positive: true, make: residentId15 },
  card: { type: 'card', positive: true, make: bankCard },
  email: { type: 'email', positive: true, make: email },
  passport: { type: 'passport', positive: true, make: passport },
  plate: { type: 'plate', positive: true, make: plate },
  wechat: { type: 'wechat', positive: true, make: wechatId },
  qq: { type: 'qq', positive: true, make: qqNumber },
  address: { type: 'address', positive: true, make: address },
  name: { type: 'name', positive: true, make: personName },
  order: { type: 'order', positive: false, make: orderNumber },
  tracking: { type: 'tracking', positive: false, make: trackingNumber },
  ean: { type: 'ean', positive: false, make: (r) => ean13(r) },
  eanLuhn: { type: 'ean', positive: false, make: (r) => ean13(r, true) },
  hotline: { type: 'hotline', positive: false, make: hotline },
  price: { type: 'price', positive: false, make: price },
  date: { type: 'date', positive: false, make: date },
  time: { type: 'time', positive: false, make: time },
  sku: { type: 'sku', positive: false, make: sku },
  code: { type: 'code', positive: false, make: otherCode },
  masked: { type: 'masked', positive: false, make: maskedCard },
  amount: { type: 'amount', positive: false, make: amount },
};

// A boundary between an address in another script and the words around it (see emailNeedsSpacing).
const SEPARATOR_BEFORE = /[\s:：，,;；（(【\[<《"“'‘]$/;
const SEPARATOR_AFTER = /^[\s，,。.;；）)】\]>》"”'’!！?？]/;

function fill(template: string, r: Prng): CorpusMessage {
  let text = '';
  const spans: Span[] = [];
  let at = 0;
  for (const m of template.matchAll(/\{(\w+)\}/g)) {
    text += template.slice(at, m.index);
    at = m.index + m[0].length;
    const slot = SLOTS[m[1]!];
    if (!slot) throw new Error(`template slot {${m[1]}} is unknown: ${template}`);
    const value = slot.make(r);
    if (slot.type === 'email') {
      const need = emailNeedsSpacing(value);
      if (need.before && text.length > 0 && !SEPARATOR_BEFORE.test(text)) text += r.pick([' ', '：']);
      if (need.after && at < template.length && !SEPARATOR_AFTER.test(template.slice(at))) {
        spans.push({ type: slot.type, positive: true, start: text.length, end: text.length + value.length });
        text += `${value} `;
        continue;
      }
    }
    spans.push({ type: slot.type, positive: slot.positive, start: text.length, end: text.length + value.length });
    text += value;
  }
  return { text: text + template.slice(at), spans };
}

/** count messages from the templates; a few are two templates joined, as customers send several lines at once. */
export function generateCorpus(seed: number, count: number): CorpusMessage[] {
  const r = new Prng(seed);
  const out: CorpusMessage[] = [];
  for (let i = 0; i < count; i++) {
    const first = fill(r.pick(TEMPLATES), r);
    if (!r.chance(0.15)) {
      out.push(first);
      continue;
    }
    const joiner = r.pick(['。', '\n', ' ', '，另外，', '！']);
    const second = fill(r.pick(TEMPLATES), r);
    const shift = first.text.length + joiner.length;
    out.push({
      text: first.text + joiner + second.text,
      spans: [...first.spans, ...second.spans.map((s) => ({ ...s, start: s.start + shift, end: s.end + shift }))],
    });
  }
  return out;
}

/** The default corpus: the seed the quality gate uses, and a second one kept as a holdout check. */
export const CORPUS_SEED = 20_260_517;
export const HOLDOUT_SEED = 7_340_011;
export const CORPUS_SIZE = 800;
