// Cue words: what a customer writes right before a number says what the number is where its digits alone do
// not (a 19-digit order number and a 19-digit card both pass the Luhn check one time in ten; an 8-digit
// number is a landline only when someone says so). Only the words directly before the number count: at
// most a few characters of ":", "是", "为", spaces and brackets may stand between, so a cue never reaches
// over another number or a sentence.

export type Cue = 'card' | 'id' | 'phone' | 'code';

/**
 * Cue words, matched on the text before a number (full-width already folded, Latin case ignored); the
 * longest word that ends there wins (发票号码 is a code, 号码 a phone).
 */
const CUE_WORDS: ReadonlyArray<readonly [string, Cue]> = (
  [
    // bank cards
    ['卡号', 'card'],
    ['卡', 'card'],
    ['银行卡', 'card'],
    ['信用卡', 'card'],
    ['储蓄卡', 'card'],
    ['借记卡', 'card'],
    ['账号', 'card'],
    ['帐号', 'card'],
    ['账户', 'card'],
    ['card', 'card'],
    ['card no', 'card'],
    ['account', 'card'],
    ['visa', 'card'],
    ['mastercard', 'card'],
    ['amex', 'card'],
    ['unionpay', 'card'],
    ['银联', 'card'],
    // identity documents
    ['身份证', 'id'],
    ['身份证号', 'id'],
    ['身份证号码', 'id'],
    ['证件号', 'id'],
    ['证件号码', 'id'],
    ['证号', 'id'],
    ['id', 'id'],
    ['id number', 'id'],
    ['id no', 'id'],
    // phones
    ['电话', 'phone'],
    ['手机', 'phone'],
    ['手机号', 'phone'],
    ['号码', 'phone'],
    ['座机', 'phone'],
    ['固话', 'phone'],
    ['联系方式', 'phone'],
    ['tel', 'phone'],
    ['phone', 'phone'],
    ['mobile', 'phone'],
    // numbers that are nobody's: orders, waybills, barcodes, serials
    ['订单', 'code'],
    ['订单号', 'code'],
    ['订单编号', 'code'],
    ['单号', 'code'],
    ['运单', 'code'],
    ['快递', 'code'],
    ['物流', 'code'],
    ['包裹', 'code'],
    ['条码', 'code'],
    ['条形码', 'code'],
    ['商品', 'code'],
    ['货号', 'code'],
    ['型号', 'code'],
    ['编号', 'code'],
    ['码', 'code'],
    ['票号', 'code'],
    ['发票号码', 'code'],
    ['流水号', 'code'],
    ['交易号', 'code'],
    ['积分', 'code'],
    ['sku', 'code'],
    ['order', 'code'],
    ['order no', 'code'],
    ['tracking', 'code'],
    ['invoice', 'code'],
    ['barcode', 'code'],
    ['ean', 'code'],
    ['serial', 'code'],
    ['ref', 'code'],
    ['reference', 'code'],
  ] as const
)
  .slice()
  .sort((a, b) => b[0].length - a[0].length);

/** The cue words by their last character (lower case), longest first: a lookup touches only a handful. */
const BY_LAST_CHAR = new Map<number, Array<readonly [string, Cue]>>();
for (const entry of CUE_WORDS) {
  const last = entry[0].charCodeAt(entry[0].length - 1);
  const list = BY_LAST_CHAR.get(last) ?? [];
  list.push(entry);
  BY_LAST_CHAR.set(last, list);
}

function isGap(c: number): boolean {
  // space, tab, : ( [ # = . and 是 为 (is), which sit between a cue and its number; quotes, so that a JSON
  // key is a cue for its value ("order": 2024..., "card_no": "6222...")
  return (
    c === 32 ||
    c === 9 ||
    c === 58 ||
    c === 40 ||
    c === 91 ||
    c === 35 ||
    c === 61 ||
    c === 0x662f ||
    c === 0x4e3a ||
    c === 46 ||
    c === 34 ||
    c === 39 ||
    c === 0xff1a // ：, which a text keeps unless it holds full-width forms that need folding (fold.ts)
  );
}

const lower = (c: number) => (c >= 65 && c <= 90 ? c + 32 : c);
const isLatinLetter = (c: number) => (c >= 97 && c <= 122) || (c >= 65 && c <= 90);

/** The cue word ending at `end`, or null; compares in place (Latin case ignored), allocating nothing. */
function cueEndingAt(text: string, end: number): Cue | null {
  if (end === 0) return null;
  const words = BY_LAST_CHAR.get(lower(text.charCodeAt(end - 1)));
  if (!words) return null;
  next: for (const [word, cue] of words) {
    const from = end - word.length;
    if (from < 0) continue;
    for (let k = 0; k < word.length - 1; k++) if (lower(text.charCodeAt(from + k)) !== word.charCodeAt(k)) continue next;
    // A Latin cue must be a whole word: "id" in "paid" is not one.
    if (word.charCodeAt(0) < 128 && from > 0 && isLatinLetter(text.charCodeAt(from - 1))) continue;
    return cue;
  }
  return null;
}

const HAO = 0x53f7; // 号

/** The cue directly before position `at` of the (width-folded) text, or null. */
export function cueBefore(text: string, at: number): Cue | null {
  let end = at;
  for (let skipped = 0; end > 0 && skipped < 5 && isGap(text.charCodeAt(end - 1)); skipped++) end--;
  const cue = cueEndingAt(text, end);
  if (cue !== null) return cue;
  // 座机号, 电话号, 银行卡号: a cue word with 号 (number) after it (号码 is a cue word of its own).
  if (end >= 1 && text.charCodeAt(end - 1) === HAO) return cueEndingAt(text, end - 1);
  return null;
}
