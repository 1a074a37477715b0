// The personal data a customer types into a chat, in the forms people actually write it: generated from the
// published formats (sources in each comment), never from the detectors in src/compliance/. Each function
// returns the exact text of one value as it appears in a message; the span a detector must cover is all of it.

import type { Prng } from './prng.js';

/** ASCII to its full-width form (U+FF01-FF5E, space U+3000), as Chinese input methods in full-width mode type. */
export function fullWidth(s: string): string {
  let out = '';
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    out += c === 0x20 ? '\u3000' : c > 0x20 && c < 0x7f ? String.fromCharCode(c + 0xfee0) : ch;
  }
  return out;
}

/** Digits written in groups of the given sizes, joined by sep (the sizes must add up to the length). */
export function group(digits: string, sizes: readonly number[], sep: string): string {
  const parts: string[] = [];
  let at = 0;
  for (const n of sizes) {
    parts.push(digits.slice(at, at + n));
    at += n;
  }
  if (at !== digits.length) throw new Error(`groups ${sizes.join('-')} do not cover ${digits.length} digits`);
  return parts.join(sep);
}

// ---- Mobile numbers ---------------------------------------------------------------------------------------
// Mainland China mobiles are 11 digits: a 3-digit network segment then 8 digits. The segments are those the
// MIIT allocated to the operators (电信网编码计划, 2017 edition, and later allocations): China Mobile 134-139,
// 147, 150-152, 157-159, 172, 178, 182-184, 187, 188, 195, 197, 198; China Unicom 130-132, 145, 155, 156, 166,
// 175, 176, 185, 186, 196; China Telecom 133, 149, 153, 173, 177, 180, 181, 189, 190, 191, 193, 199; China
// Broadnet 192; virtual operators 162, 165, 167, 170, 171. (The 13-digit 140-144 IoT segments are not
// people's phones.) Internationally: E.164 country code 86, dialled as +86 or 0086 (the ITU-T E.164 / E.123
// international forms; 00 is China's international prefix).
const MOBILE_SEGMENTS: readonly (readonly [string, number])[] = [
  ...['134', '135', '136', '137', '138', '139', '150', '151', '152', '157', '158', '159', '182', '183', '187', '188'].map(
    (s) => [s, 6] as const,
  ),
  ...['130', '131', '132', '155', '156', '185', '186', '133', '153', '180', '181', '189', '177', '176', '199'].map((s) => [s, 4] as const),
  ...['147', '145', '149', '166', '172', '173', '175', '178', '184', '190', '191', '192', '193', '195', '196', '197', '198'].map(
    (s) => [s, 1.5] as const,
  ),
  ...['162', '165', '167', '170', '171'].map((s) => [s, 0.7] as const),
];

export function mobileDigits(r: Prng): string {
  return r.weighted(MOBILE_SEGMENTS) + r.digits(8);
}

export function mobile(r: Prng): string {
  const d = mobileDigits(r);
  const body = r.weighted<() => string>([
    [() => d, 40],
    [() => group(d, [3, 4, 4], ' '), 12],
    [() => group(d, [3, 4, 4], '-'), 10],
    [() => group(d, [3, 4, 4], '.'), 4],
    [() => group(d, [3, 8], ' '), 5],
    [() => group(d, [3, 8], '-'), 2],
    [() => group(d, [7, 4], ' '), 2],
    [() => group(d, [3, 4, 4], '  '), 1],
  ])();
  const prefixed = r.weighted<() => string>([
    [() => body, 70],
    [() => `+86 ${body}`, 8],
    [() => `+86${d}`, 4],
    [() => `+86-${body}`, 3],
    [() => `0086 ${body}`, 4],
    [() => `0086${d}`, 3],
    [() => `0086-${body}`, 1],
    [() => `86-${body}`, 2],
    [() => `86 ${body}`, 1],
    [() => `(+86)${body}`, 2],
    [() => `(+86) ${body}`, 1],
    [() => `+86 (${d.slice(0, 3)}) ${d.slice(3, 7)} ${d.slice(7)}`, 0.5],
  ])();
  return r.chance(0.12) ? fullWidth(prefixed) : prefixed;
}

// ---- Landlines --------------------------------------------------------------------------------------------
// China's fixed-line numbering (MIIT 电信网编码计划): trunk prefix 0, an area code of 2 digits (10 Beijing,
// 2x the largest cities) or 3 digits, then a subscriber number of 8 digits after a 2-digit code and 7 or 8
// after a 3-digit one, whose first digit is 2-8 (0 is the trunk prefix, 1 and 9 lead service numbers).
// Written as 010-65529988, (021) 6552 9988, 0755 2688 1234, +86 10 6552 9988 (E.123 international form
// drops the trunk 0), with an extension after a dash.
const AREA_2: readonly string[] = ['10', '20', '21', '22', '23', '24', '25', '27', '28', '29'];
const AREA_3: readonly string[] = [
  '755',
  '571',
  '512',
  '531',
  '532',
  '591',
  '592',
  '731',
  '371',
  '851',
  '871',
  '898',
  '451',
  '431',
  '311',
  '351',
  '471',
  '551',
  '791',
  '771',
  '931',
  '951',
  '971',
  '991',
  '891',
  '760',
  '769',
  '757',
  '574',
  '510',
  '411',
  '535',
  '816',
  '335',
  '377',
  '713',
  '577',
  '595',
  '662',
  '668',
  '919',
  '937',
  '315',
  '563',
  '710',
  '832',
];

export function landline(r: Prng): string {
  const two = r.chance(0.55);
  const area = two ? r.pick(AREA_2) : r.pick(AREA_3);
  const localLength = two ? 8 : r.chance(0.75) ? 8 : 7;
  const local = r.digits(localLength, '2345678');
  const localGrouped = r.weighted<() => string>([
    [() => local, 6],
    [() => (localLength === 8 ? group(local, [4, 4], ' ') : group(local, [3, 4], ' ')), 3],
    [() => (localLength === 8 ? group(local, [4, 4], '-') : group(local, [3, 4], '-')), 1],
  ])();
  const ext = r.chance(0.08) ? `-${r.digits(r.int(2, 4), '123456789')}` : '';
  const national = `0${area}`;
  const written = r.weighted<() => string>([
    [() => `${national}-${localGrouped}${ext}`, 30],
    [() => `${national} ${localGrouped}${ext}`, 12],
    [() => `${national}${local}`, 10],
    [() => `(${national}) ${localGrouped}${ext}`, 10],
    [() => `(${national})${local}${ext}`, 6],
    [() => `(${national})-${local}`, 2],
    [() => `+86 ${area} ${localGrouped}`, 5],
    [() => `+86-${area}-${local}${ext}`, 4],
    [() => `+86 (${area}) ${local}`, 1],
    [() => `+86 (0)${area} ${localGrouped}`, 1], // E.123 advises against it; business cards print it anyway
    [() => `0086-${area}-${local}`, 2],
    [() => `0086 ${area} ${localGrouped}`, 1],
    [() => `86-${national}-${local}`, 1],
    [() => `86-${area}-${local}`, 1],
  ])();
  return r.chance(0.1) ? fullWidth(written) : written;
}

/** A subscriber number without its area code: only written like this after a cue (座机, 电话), and it is so. */
export function localLandline(r: Prng): string {
  const local = r.digits(8, '2345678');
  return r.pick([local, group(local, [4, 4], ' '), group(local, [4, 4], '-')]);
}

// ---- Resident identity numbers --------------------------------------------------------------------------
// GB 11643-1999 (公民身份号码): 6-digit address code (GB/T 2260 county-level divisions), 8-digit birth date
// YYYYMMDD, 3-digit sequence (odd for men), and a check character by ISO 7064 MOD 11-2 (weights 2^(17-i)
// mod 11, value 10 written X). The 15-digit numbers of GB 11643-1989 (issued until 1999, still on old
// documents and in old records) are address code, YYMMDD (19YY) and the sequence, without a check character.
// People write them in one run, or in groups of 6-8-4 (address, birth date, the rest) or 6-4-4-4.
const ADDRESS_CODES: readonly string[] = [
  '110101',
  '110105',
  '110108',
  '120101',
  '130102',
  '140105',
  '150102',
  '210102',
  '220102',
  '230103',
  '310101',
  '310104',
  '310115',
  '320106',
  '320506',
  '330106',
  '330203',
  '340104',
  '350203',
  '360102',
  '370202',
  '410105',
  '420106',
  '430104',
  '440106',
  '440305',
  '440307',
  '441900',
  '450103',
  '460105',
  '500103',
  '510107',
  '520102',
  '530102',
  '540102',
  '610113',
  '620102',
  '630102',
  '640104',
  '650102',
  '320583',
  '330782',
  '350582',
  '441322',
  '445202',
  '510623',
  '431021',
  '130628',
];

const WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/** ISO 7064 MOD 11-2 over the first 17 digits (GB 11643-1999 §8.2). */
export function gb11643Check(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(first17[i]) * WEIGHTS[i]!;
  return '10X98765432'[sum % 11]!;
}

function birthDate(r: Prng, fromYear: number, toYear: number): { y: number; m: number; d: number } {
  const y = r.int(fromYear, toYear);
  const m = r.int(1, 12);
  const days = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return { y, m, d: r.int(1, days) };
}

const pad = (n: number, w: number) => String(n).padStart(w, '0');

export function residentId18Raw(r: Prng): string {
  const { y, m, d } = birthDate(r, 1940, 2007);
  // A tenth of numbers end in X; pick those often enough to exercise the letter.
  for (;;) {
    const first17 = `${r.pick(ADDRESS_CODES)}${y}${pad(m, 2)}${pad(d, 2)}${pad(r.int(1, 999), 3)}`;
    const check = gb11643Check(first17);
    if (check === 'X' || !r.chance(0.15)) return first17 + check;
  }
}

export function residentId18(r: Prng): string {
  const raw = residentId18Raw(r);
  const id = raw.endsWith('X') && r.chance(0.3) ? `${raw.slice(0, 17)}x` : raw;
  const written = r.weighted<() => string>([
    [() => id, 70],
    [() => group(id, [6, 8, 4], ' '), 12],
    [() => group(id, [6, 4, 4, 4], ' '), 5],
    [() => group(id, [6, 8, 4], '-'), 3],
  ])();
  return r.chance(0.1) ? fullWidth(written) : written;
}

export function residentId15(r: Prng): string {
  const { y, m, d } = birthDate(r, 1930, 1985);
  const id = `${r.pick(ADDRESS_CODES)}${pad(y % 100, 2)}${pad(m, 2)}${pad(d, 2)}${pad(r.int(1, 999), 3)}`;
  const written = r.weighted<() => string>([
    [() => id, 8],
    [() => group(id, [6, 6, 3], ' '), 2],
  ])();
  return r.chance(0.1) ? fullWidth(written) : written;
}

// ---- Bank cards ---------------------------------------------------------------------------------------------
// ISO/IEC 7812-1: an issuer identification number (IIN/BIN), the account, and a Luhn check digit. China
// UnionPay's range starts with 62 (debit cards mostly 19 digits, credit 16); Chinese banks also issue Visa
// (4), Mastercard (5) and JCB (35) cards of 16 digits, and ICBC's older 9558 debit cards are 19 digits. Cards
// are written in groups of 4 (the embossing), or 6 + 13 (the BIN, then the rest, as some bank apps show it).
const BINS: readonly (readonly [string, number, number])[] = [
  // [IIN, length, weight]
  ['622202', 19, 5],
  ['622208', 19, 2],
  ['621226', 19, 2],
  ['955880', 19, 4],
  ['955881', 19, 1],
  ['622848', 19, 4],
  ['622845', 19, 1],
  ['621700', 19, 4],
  ['436742', 19, 1],
  ['622262', 19, 2],
  ['621661', 19, 2],
  ['622150', 19, 2],
  ['621799', 19, 1],
  ['622588', 16, 4],
  ['621483', 16, 2],
  ['625912', 16, 2],
  ['628288', 16, 1],
  ['438088', 16, 2],
  ['404117', 16, 1],
  ['518710', 16, 2],
  ['552599', 16, 1],
  ['356833', 16, 1],
  ['622609', 17, 0.5],
  ['623668', 18, 0.5],
];

/** Luhn: the check digit that makes the whole number's mod-10 sum zero (ISO/IEC 7812-1 Annex B). */
export function luhnCheckDigit(body: string): string {
  let sum = 0;
  for (let i = body.length - 1, double = true; i >= 0; i--, double = !double) {
    let d = Number(body[i]);
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

export function bankCardDigits(r: Prng): string {
  const [bin, length] = r.weighted(BINS.map(([b, n, w]) => [[b, n] as const, w] as const));
  const body = bin + r.digits(length - bin.length - 1);
  return body + luhnCheckDigit(body);
}

export function bankCard(r: Prng): string {
  const d = bankCardDigits(r);
  const fours = (sep: string) => d.match(/.{1,4}/g)!.join(sep);
  const written = r.weighted<() => string>([
    [() => d, 45],
    [() => fours(' '), 30],
    [() => fours('-'), 5],
    [() => (d.length === 19 ? group(d, [6, 13], ' ') : fours(' ')), 8],
    [() => fours('  '), 1],
  ])();
  return r.chance(0.1) ? fullWidth(written) : written;
}

// ---- E-mail addresses ---------------------------------------------------------------------------------------
// RFC 5321/5322 addresses (dot-atom local part: letters, digits and !#$%&'*+-/=?^_`{|}~ with single dots),
// RFC 6531 (SMTPUTF8) local parts in any script, and IDN domains (RFC 5890), e.g. ICANN's universal-
// acceptance test addresses such as 用户@例子.广告. Chinese users mostly have numeric QQ addresses or
// pinyin names at the big free providers.
const FREE_DOMAINS: readonly string[] = [
  'qq.com',
  '163.com',
  '126.com',
  'sina.com',
  'sina.cn',
  'sohu.com',
  'foxmail.com',
  'yeah.net',
  '139.com',
  'aliyun.com',
  'gmail.com',
  'outlook.com',
  'hotmail.com',
  'icloud.com',
  'vip.qq.com',
  'vip.163.com',
];
const ORG_DOMAINS: readonly string[] = [
  'pku.edu.cn',
  'mail.tsinghua.edu.cn',
  'huawei.com',
  'example.com.cn',
  'shop-example.cn',
  'corp.example.net',
  'mails.example.org.cn',
  'tx-logistics.com',
  'example.hk',
  'example.com.tw',
];
const IDN_DOMAINS: readonly string[] = [
  '例子.中国',
  '例子.广告',
  '公司.cn',
  '中文网.中国',
  '北京大学.中国',
  '邮件.公司',
  '商城.网店',
  'münchen.example',
];
const PINYIN: readonly string[] = [
  'zhang',
  'wang',
  'li',
  'liu',
  'chen',
  'yang',
  'huang',
  'zhao',
  'wu',
  'zhou',
  'xu',
  'sun',
  'ma',
  'zhu',
  'hu',
  'guo',
  'lin',
  'he',
  'gao',
  'luo',
  'wei',
  'fang',
  'na',
  'min',
  'jing',
  'lei',
  'jun',
  'yan',
  'jie',
  'tao',
  'ming',
  'chao',
  'xia',
  'ping',
  'gang',
  'xiaoming',
  'lili',
];
const NON_ASCII_LOCAL: readonly string[] = [
  '用户',
  '张伟',
  '客服',
  '李娜',
  '王芳芳',
  '小明',
  '售后服务',
  'dörte',
  'josé.garcía',
  'xiǎomíng',
];

function asciiLocal(r: Prng): string {
  return r.weighted<() => string>([
    [() => r.digits(r.int(6, 11), '123456789'), 25],
    [() => `${r.pick(PINYIN)}${r.pick(PINYIN)}${r.chance(0.6) ? r.int(1, 2024) : ''}`, 25],
    [() => `${r.pick(PINYIN)}.${r.pick(PINYIN)}`, 10],
    [() => `${r.pick(PINYIN)}_${r.pick(PINYIN)}${r.int(10, 99)}`, 8],
    [() => `${r.pick(PINYIN)}-${r.pick(PINYIN)}`, 4],
    [() => `${r.pick(PINYIN)}+${r.pick(['shop', 'taobao', 'jd', 'orders'])}`, 3],
    [() => `${r.pick(PINYIN).toUpperCase()}${r.pick(PINYIN)}`, 3],
  ])();
}

export function email(r: Prng): string {
  return r.weighted<() => string>([
    [() => `${asciiLocal(r)}@${r.pick(FREE_DOMAINS)}`, 55],
    [() => `${asciiLocal(r)}@${r.pick(ORG_DOMAINS)}`, 12],
    [() => `${asciiLocal(r)}＠${r.pick(FREE_DOMAINS)}`, 6],
    [() => fullWidth(`${asciiLocal(r)}@${r.pick(FREE_DOMAINS)}`), 4],
    [() => `${r.pick(NON_ASCII_LOCAL)}@${r.pick(FREE_DOMAINS)}`, 6],
    [() => `${asciiLocal(r)}@${r.pick(IDN_DOMAINS)}`, 6],
    [() => `${r.pick(NON_ASCII_LOCAL)}@${r.pick(IDN_DOMAINS)}`, 6],
    [() => `${r.pick(NON_ASCII_LOCAL)}＠${r.pick(IDN_DOMAINS)}`, 2],
  ])();
}

/**
 * Whether an address needs a separator from neighbouring Chinese text: a local part in a non-Latin script, or
 * one with accented letters, would otherwise run into the words before it (邮箱是张伟@... has no boundary a
 * reader could point to either), and an IDN top-level domain into the words after it.
 */
export function emailNeedsSpacing(value: string): { before: boolean; after: boolean } {
  const at = value.search(/[@＠]/);
  const outsideAscii = (s: string) => /[^\x00-\x7f\uff01-\uff5e]/.test(s);
  const tld = value.slice(value.lastIndexOf('.') + 1);
  return { before: outsideAscii(value.slice(0, at)), after: outsideAscii(tld) };
}
