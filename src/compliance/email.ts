// E-mail addresses, found from each "@" outwards (on width-folded text, so ＠ and full-width letters count):
// RFC 5322 dot-atom local parts, RFC 6531 local parts in any script (用户@..., dörte@...), and domains
// of two or more labels, internationalized ones included (例子.中国, RFC 5890).
//
// Chinese has no spaces, so where an address meets the words around it is decided by script: a Latin
// address ends where Chinese begins (邮箱zhang@qq.com谢谢), a Chinese local part starts after the last cue
// word (邮箱是张伟@... keeps 张伟), and a Chinese top-level domain is one of the delegated ones
// (IANA root zone), so 例子.中国谢谢 ends after 中国.

export interface EmailMatch {
  start: number;
  end: number;
}

/** Chinese-script top-level domains in the root zone (IANA), longest first. */
const HAN_TLDS = [
  '中文网',
  '我爱你',
  '中国',
  '中國',
  '公司',
  '网络',
  '網絡',
  '香港',
  '台湾',
  '台灣',
  '澳門',
  '广告',
  '网店',
  '在线',
  '商城',
  '集团',
  '企业',
  '商标',
  '游戏',
  '网址',
  '手机',
  '信息',
  '机构',
  '购物',
  '时尚',
  '健康',
  '世界',
  '娱乐',
  '八卦',
  '新加坡',
].sort((a, b) => b.length - a.length);

/** Words that end a Chinese local part's lead-in: what stands before the address, not in it. */
const LEAD_INS = ['邮箱地址', '邮箱', '邮件', '地址', '发到', '发送到', '发给', '抄送', '是', '为', '到', '和', '或', '及'];

const isHan = (c: number) => (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf);
const isAsciiAlnum = (c: number) => (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
const LETTER = /[\p{L}\p{M}]/u;
const isOtherLetter = (c: number, ch: string) => c > 127 && !isHan(c) && LETTER.test(ch);

/** A local-part character: ASCII letters and digits, . _ % + -, and letters of any script. */
function isLocalChar(t: string, i: number): boolean {
  const c = t.charCodeAt(i);
  if (isAsciiAlnum(c) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45) return true;
  return c > 127 && (isHan(c) || isOtherLetter(c, t[i]!));
}

/** Han or not: a label or local part stays in one of the two. */
const scriptOf = (c: number) => (isHan(c) ? 1 : 0);

function localStart(t: string, at: number): number {
  let i = at;
  while (i > 0 && isLocalChar(t, i - 1)) i--;
  // A switch between Han and other letters marks the start: 邮箱zhang@ -> zhang.
  for (let j = at - 1; j > i; j--) {
    if (scriptOf(t.charCodeAt(j)) !== scriptOf(t.charCodeAt(j - 1))) {
      i = j;
      break;
    }
  }
  if (isHan(t.charCodeAt(i))) {
    const local = t.slice(i, at);
    let cut = 0;
    for (const w of LEAD_INS) {
      const k = local.lastIndexOf(w);
      if (k >= 0 && k + w.length < local.length && k + w.length > cut) cut = k + w.length;
    }
    i += cut;
  }
  while (i < at && t.charCodeAt(i) === 46) i++; // a local part does not start with a dot
  return i;
}

/** The end of the domain after "@" at `at`, or -1 when there is no domain of two labels with a real top-level label. */
function domainEnd(t: string, at: number): number {
  let i = at + 1;
  let labels = 0;
  let lastLabelStart = i;
  let end = -1;
  for (;;) {
    const start = i;
    const c0 = t.charCodeAt(i);
    if (!(isAsciiAlnum(c0) || (c0 > 127 && (isHan(c0) || isOtherLetter(c0, t[i]!))))) break;
    const han = isHan(c0);
    while (i < t.length) {
      const c = t.charCodeAt(i);
      const ok = han ? isHan(c) : isAsciiAlnum(c) || c === 45 || isOtherLetter(c, t[i]!);
      if (!ok) break;
      i++;
    }
    labels++;
    lastLabelStart = start;
    if (labels >= 2) end = i;
    if (t.charCodeAt(i) !== 46 || i + 1 >= t.length) break;
    i++; // the dot
  }
  if (labels < 2 || end < 0) return -1;
  const tld = t.slice(lastLabelStart, end);
  if (isHan(tld.charCodeAt(0))) {
    const known = HAN_TLDS.find((d) => tld.startsWith(d));
    return known ? lastLabelStart + known.length : -1;
  }
  // A top-level label is letters (2-24), or an A-label (xn--...); an all-digit one is an IP or a version.
  if (/^(?:[^\d\-]{2,24}|xn--[a-z0-9-]+)$/i.test(tld)) return end;
  return -1;
}

export function findEmails(t: string): EmailMatch[] {
  const out: EmailMatch[] = [];
  for (let at = t.indexOf('@'); at >= 0; at = t.indexOf('@', at + 1)) {
    const start = localStart(t, at);
    if (start === at) continue;
    const end = domainEnd(t, at);
    if (end < 0) continue;
    if (out.length > 0 && out[out.length - 1]!.end > start) continue;
    out.push({ start, end });
  }
  return out;
}
