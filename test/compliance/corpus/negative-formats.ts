// Numbers a customer-service chat is full of that are NOT personal data and must stay as they are: order
// and tracking numbers, barcodes, prices and amounts, dates and times, SKUs, public hotlines. Several are
// built to look like personal data on purpose (a 19-digit order number that passes the Luhn check, an EAN-13
// barcode that also passes it, a 13-digit tracking number starting with 6).

import { group, luhnCheckDigit } from './personal-formats.js';
import type { Prng } from './prng.js';

function luhnValid(digits: string): boolean {
  return luhnCheckDigit(digits.slice(0, -1)) === digits.slice(-1);
}

/** Draws until the Luhn test gives the wanted answer (one draw in ten passes by chance). */
function withLuhn(r: Prng, make: () => string, pass: boolean): string {
  for (;;) {
    const v = make();
    if (luhnValid(v.replace(/\D/g, '')) === pass) return v;
  }
}

// ---- Order numbers ----------------------------------------------------------------------------------------------
// What the platforms print on an order page (seen on their order pages, 2024): Taobao/Tmall 18-19 digits,
// JD 12 digits, Pinduoduo YYMMDD-15 digits, Douyin shop 19 digits starting with 6 or 4, Meituan 19 digits.
export function orderNumber(r: Prng): string {
  return r.weighted<() => string>([
    [() => r.digits(r.pick([18, 19]), '1234'), 4],
    [() => withLuhn(r, () => r.digits(19, '1234'), true), 2],
    [() => r.digits(12, '23'), 3],
    [() => `${r.int(23, 25)}${String(r.int(1, 12)).padStart(2, '0')}${String(r.int(1, 28)).padStart(2, '0')}-${r.digits(15)}`, 2],
    [() => withLuhn(r, () => `6${r.digits(18)}`, true), 2],
    [() => `6${r.digits(18)}`, 1],
    [() => `${r.pick(['ORD', 'DD', 'NO'])}${r.int(2023, 2025)}${r.digits(8)}`, 1],
  ])();
}

// ---- Tracking numbers ------------------------------------------------------------------------------------------
// Express waybills (运单号) as the couriers print them: SF SF + 13 digits; J&T JT + 13; YTO YT + 13; JD JD +
// letters + digits; ZTO 12 or 14 digits starting with 7; STO 13 digits (77..., 66...); Yunda 13 digits (43...,
// 46..., 31...); EMS domestic 13 digits starting with 1, international UPU S10 (EA123456789CN).
export function trackingNumber(r: Prng): string {
  return r.weighted<() => string>([
    [() => `SF${r.digits(13)}`, 4],
    [() => `JT${r.digits(13)}`, 2],
    [() => `YT${r.digits(13)}`, 2],
    [() => `JDVA${r.digits(11)}`, 1],
    [() => `7${r.digits(r.pick([11, 13]))}`, 3],
    [() => `${r.pick(['77', '66'])}${r.digits(11)}`, 2],
    [() => withLuhn(r, () => `66${r.digits(11)}`, true), 2],
    [() => `${r.pick(['43', '46', '31'])}${r.digits(11)}`, 3],
    [() => withLuhn(r, () => `${r.pick(['43', '46'])}${r.digits(11)}`, true), 1],
    [() => `1${r.digits(12)}`, 1],
    [() => `E${r.pick(['A', 'E', 'M'])}${r.digits(9)}CN`, 1],
  ])();
}

// ---- Barcodes -------------------------------------------------------------------------------------------------------
// EAN-13 (GS1 General Specifications §7.9): GS1 China's prefixes 690-699, then the company and item, then a
// check digit with weights 1 and 3 from the left. Unlike Luhn; one in ten EAN-13s passes Luhn too.
export function ean13(r: Prng, passesLuhn = false): string {
  const make = () => {
    const body = `69${r.int(0, 9)}${r.digits(9)}`;
    let sum = 0;
    for (let i = 0; i < 12; i++) sum += Number(body[i]) * (i % 2 === 0 ? 1 : 3);
    return body + String((10 - (sum % 10)) % 10);
  };
  return passesLuhn ? withLuhn(r, make, true) : make();
}

// ---- Public numbers --------------------------------------------------------------------------------------------
// Numbers that belong to businesses and the state, not to a person, so they stay: bank and courier hotlines
// (95588 ICBC, 95533 CCB, 95599 ABC, 95555 CMB, 95566 BOC, 95338 SF, 95311 ZTO, 95546 Yunda...), carriers'
// service numbers (10086, 10010, 10000), government lines (12345, 12315, 12306, 110, 120), and the toll-free
// and shared-cost business numbers 800-xxx-xxxx and 400-xxx-xxxx (MIIT allocations).
export function hotline(r: Prng): string {
  return r.weighted<() => string>([
    [
      () => r.pick(['95588', '95533', '95599', '95555', '95566', '95559', '95528', '95568', '95595', '95561', '95580', '95511', '95518']),
      5,
    ],
    [() => r.pick(['95338', '95311', '95546', '95554', '95543', '11183', '950616']), 3],
    [() => r.pick(['10086', '10010', '10000', '12345', '12315', '12306', '12366', '110', '120', '119', '114']), 3],
    [
      () =>
        r.pick([
          `400-${r.digits(3)}-${r.digits(4)}`,
          `400${r.digits(7)}`,
          `400 ${r.digits(3)} ${r.digits(4)}`,
          `4008-${r.digits(3)}-${r.digits(3)}`,
        ]),
      5,
    ],
    [() => r.pick([`800-${r.digits(3)}-${r.digits(4)}`, `800${r.digits(7)}`, `800 ${r.digits(3)} ${r.digits(4)}`]), 2],
    [() => `1010${r.digits(4)}`, 1],
  ])();
}

// ---- Prices, amounts, dates, times, SKUs, other codes --------------------------------------------------------------
export function price(r: Prng): string {
  const yuan = r.weighted([
    [r.int(1, 99), 3],
    [r.int(100, 9999), 4],
    [r.int(10000, 99999), 1],
  ] as const);
  const cents = r.chance(0.5) ? `.${String(r.int(0, 99)).padStart(2, '0')}` : '';
  const thousands = yuan >= 1000 && r.chance(0.4) ? yuan.toLocaleString('en-US') : String(yuan);
  return r.weighted<() => string>([
    [() => `¥${thousands}${cents}`, 3],
    [() => `￥${thousands}${cents}`, 2],
    [() => `${thousands}${cents}元`, 4],
    [() => `${thousands}${cents} 元`, 1],
    [() => `RMB ${thousands}${cents}`, 1],
  ])();
}

export function date(r: Prng): string {
  const y = r.int(2019, 2025);
  const m = r.int(1, 12);
  const d = r.int(1, 28);
  const p = (n: number) => String(n).padStart(2, '0');
  return r.weighted<() => string>([
    [() => `${y}-${p(m)}-${p(d)}`, 4],
    [() => `${y}/${m}/${d}`, 2],
    [() => `${y}年${m}月${d}日`, 3],
    [() => `${m}月${d}号`, 2],
    [() => `${y}${p(m)}${p(d)}`, 1],
    [() => `${y}-${p(m)}-${p(d)} ${p(r.int(0, 23))}:${p(r.int(0, 59))}:${p(r.int(0, 59))}`, 2],
    [() => `${y}.${p(m)}.${p(d)}`, 1],
  ])();
}

export function time(r: Prng): string {
  const h = r.int(0, 23);
  return r.weighted<() => string>([
    [() => `${String(h).padStart(2, '0')}:${String(r.int(0, 59)).padStart(2, '0')}`, 3],
    [() => `${r.pick(['上午', '下午', '晚上'])}${r.int(1, 11)}点${r.pick(['', '半', '左右'])}`, 2],
  ])();
}

export function sku(r: Prng): string {
  return r.weighted<() => string>([
    [
      () =>
        `${r.pick(['HW', 'XM', 'OP', 'AP', 'SN'])}-${r.pick(['P60', 'M14', 'R17', 'X9'])}-${r.pick(['128G', '256G', '512G'])}-${r.pick(['BLK', 'WHT', 'BLU'])}`,
      2,
    ],
    [() => `${r.pick(['A', 'B', 'K', 'T'])}${r.int(2019, 2025)}-${r.digits(4)}-${r.digits(2)}`, 2],
    [() => `${r.digits(7, '123456789')}`, 1],
    [() => `SKU${r.digits(10)}`, 1],
  ])();
}

/** Long numbers that are nobody's: transaction serials, timestamps, invoice numbers, company credit codes. */
export function otherCode(r: Prng): string {
  const creditCodeChars = '0123456789ABCDEFGHJKLMNPQRTUWXY';
  return r.weighted<() => string>([
    [() => `${r.int(2023, 2025)}${r.digits(18)}`, 2], // payment transaction serial (交易流水号)
    [() => `17${r.digits(11)}`, 1], // millisecond timestamp
    [() => r.digits(8, '123456789'), 1], // invoice number (发票号码, 8 digits)
    [() => `${r.digits(20, '123456789')}`, 1], // full e-invoice number (20 digits)
    [() => `91${r.digits(6)}${Array.from({ length: 10 }, () => r.pick([...creditCodeChars])).join('')}`, 1], // GB 32100 credit code
    [() => group(r.digits(16, '123456789'), [4, 4, 4, 4], '-'), 1], // gift card / activation code
  ])();
}

/** A bank card shown masked, as bank apps and SMS do: not a card number any more, and left alone. */
export function maskedCard(r: Prng): string {
  return r.pick([`尾号${r.digits(4)}`, `6222 **** **** ${r.digits(4)}`, `6217********${r.digits(4)}`]);
}

export function amount(r: Prng): string {
  return r.weighted<() => string>([
    [() => `${r.int(1, 50)}件`, 2],
    [() => `${r.int(100, 99999)}积分`, 1],
    [() => `${r.int(1, 99)}%`, 1],
    [() => `${r.int(1, 30)}天`, 1],
    [() => `v${r.int(1, 12)}.${r.int(0, 20)}.${r.int(0, 99)}`, 1],
    [() => `${r.int(1, 9)}.${r.int(1, 99)}万`, 1],
  ])();
}
