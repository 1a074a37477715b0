// What makes a string of digits a phone, an identity or a card number by the numbering rules themselves:
// check digits where the format has one, allocated ranges where it does not. Pure functions of digits.

/** Luhn (mod 10) over a string of digits (ISO/IEC 7812-1 Annex B). */
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
/** First two digits of a PRC resident identity number: the province-level division (GB/T 2260). */
const CN_PROVINCES = new Set([
  11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82,
  83,
]);

/** The ISO 7064 MOD 11-2 check character of the first 17 digits (GB 11643-1999). */
export function cnIdCheckChar(first17: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += (first17.charCodeAt(i) - 48) * CN_ID_WEIGHTS[i]!;
  return CN_ID_CHECK[sum % 11]!;
}

function realDate(year: number, month: number, day: number, today: Date): boolean {
  if (year < 1900 || month < 1 || month > 12 || day < 1) return false;
  const birth = new Date(Date.UTC(year, month - 1, day));
  if (birth.getUTCMonth() !== month - 1 || birth.getUTCDate() !== day) return false;
  return birth.getTime() <= today.getTime();
}

/** An 18-character PRC resident identity number: province, a real birth date not in the future, check character. */
export function cnIdValid(id: string, today: Date = new Date()): boolean {
  if (!/^\d{17}[\dX]$/i.test(id)) return false;
  if (!CN_PROVINCES.has(Number(id.slice(0, 2)))) return false;
  if (!realDate(Number(id.slice(6, 10)), Number(id.slice(10, 12)), Number(id.slice(12, 14)), today)) return false;
  return cnIdCheckChar(id.slice(0, 17)) === id[17]!.toUpperCase();
}

/** 15-digit numbers were issued until the 1999 standard replaced them: later birth dates are not among them. */
const LAST_15_DIGIT_ISSUE = new Date(Date.UTC(1999, 11, 31));

/**
 * A 15-digit identity number of GB 11643-1989 (issued until 1999): province, a real 19YY birth date, and a
 * sequence. It has no check character, so about one random 15-digit number in a hundred passes: the caller
 * also weighs the words before it.
 */
export function cnId15Valid(id: string): boolean {
  if (!/^\d{15}$/.test(id)) return false;
  if (!CN_PROVINCES.has(Number(id.slice(0, 2)))) return false;
  return realDate(1900 + Number(id.slice(6, 8)), Number(id.slice(8, 10)), Number(id.slice(10, 12)), LAST_15_DIGIT_ISSUE);
}

/**
 * A mainland mobile number (11 digits) in a segment the MIIT allocated to people's phones (电信网编码计划,
 * 2017 edition and later): 13x, 145-149, 150-153, 155-159, 162, 165-167, 170-178, 18x, 190-193, 195-199. The
 * 13-digit IoT numbers (140-144) and the unallocated 154, 194 are not.
 */
export function cnMobileValid(national: string): boolean {
  return /^1(?:3\d|4[5-9]|5[0-35-9]|6[2567]|7[0-8]|8\d|9[0-35-9])\d{8}$/.test(national);
}

/**
 * The length of the area code at the start of a national number written with its trunk 0, or 0 when none
 * fits. China's area codes are 010 and 02x (then an 8-digit subscriber number) and 0 + three digits 3-9xx
 * (then 7 or 8 digits); x00 codes do not exist (400 and 800 are business numbers, not areas).
 */
export function cnAreaCodeLength(national: string): 0 | 3 | 4 {
  if (national.charCodeAt(0) !== 48) return 0;
  const d1 = national.charCodeAt(1) - 48;
  if (d1 === 1) return national.charCodeAt(2) === 48 ? 3 : 0;
  if (d1 === 2) return 3;
  if (d1 >= 3 && d1 <= 9) return national.startsWith('00', 2) ? 0 : 4;
  return 0;
}

/** A subscriber number: 7 or 8 digits starting 2-8 (0 is the trunk prefix; 1 and 9 lead service numbers). */
export function cnSubscriberValid(local: string, areaLength: number): boolean {
  const first = local.charCodeAt(0);
  if (first < 50 || first > 56) return false;
  return areaLength === 3 ? local.length === 8 : local.length === 7 || local.length === 8;
}

/** A bank card's first digits: the ISO/IEC 7812 major industry identifiers of payment cards (2-6), or the 95xx of Chinese banks' older debit cards (ICBC 9558, ABC 9559). */
export function cardPrefixValid(digits: string): boolean {
  const c = digits.charCodeAt(0);
  return (c >= 50 && c <= 54) || digits.startsWith('9558') || digits.startsWith('9559');
}
