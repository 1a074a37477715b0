// Street addresses in mainland form (GB/T 2260 divisions, then the street): province, city (市, 自治州),
// district or county (区, 县, 旗), township (街道, 镇, 乡), a road (路, 街, 大道, 巷, 弄, 胡同, 段) with a house
// number (号), then building, unit and room. What must be there is the road with its number, and a
// division or a cue word (地址, 寄到, 送到, 住在) before it: 深圳市 alone, or "通道3号", stays.
//
// Chinese runs the words before an address into it (我住在杭州滨江区…, 地址改成南宁市…), so the start is
// found from the road backwards: the run of Han characters before it, cut after the last lead-in word
// (住在, 改成, 送到, 是, ...) and at a province's name when one follows.

import type { Extended } from './detector.js';

// 段 for a numbered section of a long road (人民南路四段12号).
// A space may stand around the numbers (文三路 90 号), as input methods and PC keyboards put one there.
const ANCHOR = /(?:大道|大街|路|街|巷|胡同|道|段) ?\d{1,5}(?:-\d{1,4})? ?[号弄]/g;
// After the house number: building, unit, floor, room (阳光花园3栋2单元1505室, 18号楼1507, 2 号楼 1801 室).
const REST =
  /(?:[\u4e00-\u9fffA-Za-z]{0,10}? ?\d{1,5} ?(?:号楼|栋|幢|座|单元|层|楼|室|号|房))*(?:[\u4e00-\u9fffA-Za-z]{0,10}? ?\d{1,5}号?(?![\d件个元天次]))?/y;
const LEAD_INS = ['地址', '改成', '改为', '应该是', '寄到', '寄往', '送到', '发到', '送至', '寄至', '住在', '位于', '是', '在', '到'];
const PROVINCE =
  /北京|天津|上海|重庆|河北|山西|辽宁|吉林|黑龙江|江苏|浙江|安徽|福建|江西|山东|河南|湖北|湖南|广东|海南|四川|贵州|云南|陕西|甘肃|青海|台湾|内蒙古|广西|西藏|宁夏|新疆|香港|澳门/;
const DIVISION = /[省市区县州镇乡旗]|街道/;
const CUED = /地址|寄到|送到|发到|住在|寄往|送至|寄至/;

const isHan = (c: number) => c >= 0x4e00 && c <= 0x9fff;

export function findAddresses(t: string): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  ANCHOR.lastIndex = 0;
  for (let m = ANCHOR.exec(t); m !== null; m = ANCHOR.exec(t)) {
    let left = m.index;
    while (left > 0 && isHan(t.charCodeAt(left - 1))) left--;
    if (left === m.index) continue; // a road needs a name
    const before = t.slice(left, m.index);
    let cut = 0;
    for (const w of LEAD_INS) {
      const k = before.lastIndexOf(w);
      if (k >= 0 && k + w.length > cut && k + w.length < before.length) cut = k + w.length;
    }
    const province = PROVINCE.exec(before.slice(cut));
    if (province && province.index > 0) cut += province.index;
    const words = before.slice(cut);
    if (!DIVISION.test(words) && !CUED.test(t.slice(Math.max(0, left - 6), left + cut))) continue;
    REST.lastIndex = m.index + m[0].length;
    const rest = REST.exec(t);
    const end = m.index + m[0].length + (rest ? rest[0].length : 0);
    const start = left + cut;
    if (out.length > 0 && out[out.length - 1]!.end > start) continue;
    out.push({ start, end });
    ANCHOR.lastIndex = end;
  }
  return out;
}

export const address: Extended = {
  label: 'ADDRESS',
  defaultOn: true,
  mayMatch: (s) => s.folded.includes('号') || s.folded.includes('弄'),
  find: (s) => findAddresses(s.folded),
};
