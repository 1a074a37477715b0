// Han names: a surname (the common ones by the Ministry of Public Security's household-register counts, and
// the two-character ones) and one or two given characters, or a surname and an honorific (王女士). Any two
// Han characters could be a name, so only these count: after a cue word (我叫, 收件人, 联系人, 姓名, 户名,
// 持卡人, ...), before 收 in a shipping line (张伟收), and in a copied address block, directly before a
// phone or identity number (张伟 138..., 张伟，(+86)...).

import type { Extended } from './detector.js';
import { GAP } from './pattern.js';

const SURNAME =
  '(?:欧阳|司马|诸葛|上官|东方|皇甫|慕容|令狐|[王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付傅方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤康易乔赖文施洪庞樊殷颜倪牛柳葛伍单祝包左翟安谷凌季鲁梅盛童霍柴聂关冉骆甘景])';
// Characters that end a name rather than continue it: particles, pronouns, and the words that follow a name here.
const NOT_GIVEN = '的了吗呢吧啊呀想要在是和跟给说问请你我他她们这那电手收住买订上下来去到还也就都会能可已先号码机话址';
const GIVEN = `(?:(?![${NOT_GIVEN}])[\\u4e00-\\u9fff])`;
const NAME_CORE = `${SURNAME}(?:先生|女士|小姐|老师|${GIVEN}{1,2})`;
const CUES = '我叫|我的名字是|名字叫|名字是|姓名|收件人|收货人|联系人|寄件人|持卡人|开户名|户名|请联系|name on the card|name';
const NAME = new RegExp(
  `(?:${CUES})${GAP}(${NAME_CORE})` +
    `|(?:^|[\\s，,;；、。！!])(${NAME_CORE})(?=收(?:[\\s，,。;；]|$)|[\\s，,、:：]+(?:\\(?\\+|\\d[\\d\\s.-]{6,}))`,
  'g',
);

// Words that begin with a surname's character and follow these cues in ordinary sentences (联系人方式,
// 收件人单号, 联系人安排一下): they are not names.
const COMMON_WORDS = /^(?:方式|方法|方便|方面|方向|单号|单位|包裹|包装|包邮|安排|安装|安全|文件|高兴|金额|关系|常用|白天|江边|钱包|钱款)/;

export function findNames(t: string): Array<{ start: number; end: number }> {
  const out: Array<{ start: number; end: number }> = [];
  NAME.lastIndex = 0;
  for (let m = NAME.exec(t); m !== null; m = NAME.exec(t)) {
    const value = m[1] ?? m[2]!;
    if (COMMON_WORDS.test(value)) continue;
    const start = m.index + m[0].length - value.length;
    out.push({ start, end: start + value.length });
  }
  return out;
}

export const name: Extended = {
  label: 'NAME',
  defaultOn: true,
  mayMatch: () => true,
  find: (s) => findNames(s.folded),
};
