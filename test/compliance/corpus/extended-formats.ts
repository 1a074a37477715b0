// Personal data beyond the core numbers, as customers type it (the extended, switchable types): passport
// numbers, licence plates, WeChat and QQ ids, street addresses, and names. Generated from the published
// formats (sources in each comment), not from the detectors.

import { fullWidth } from './personal-formats.js';
import type { Prng } from './prng.js';

// Letters that serial numbers avoid because they read as digits (I and O), in both passports and plates.
const LETTERS = 'ABCDEFGHJKLMNPQRSTUVWXYZ';

// ---- Passports ------------------------------------------------------------------------------------------------
// PRC ordinary passports: G + 8 digits (issued to 2012), E + 8 digits (e-passports from 2012), and E + one
// letter + 7 digits once the E-digit series ran out (2017). The number is printed in the machine-readable
// zone (ICAO Doc 9303), so people copy it as one run. Hong Kong/Macau travel permits (C + 8 digits, or C + a
// letter + 7) are written the same way.
export function passport(r: Prng): string {
  const value = r.weighted<() => string>([
    [() => `E${r.digits(8)}`, 5],
    [() => `E${r.pick([...LETTERS])}${r.digits(7)}`, 4],
    [() => `G${r.digits(8)}`, 3],
    [() => `C${r.pick([...LETTERS])}${r.digits(7)}`, 1],
  ])();
  return r.chance(0.1) ? value.toLowerCase() : value;
}

// ---- Licence plates ---------------------------------------------------------------------------------------------
// GA 36-2018 (机动车号牌): the province's one-character abbreviation, the issuing office's letter (I and O
// not used), a separator dot on the plate itself (people type ·, a space, or nothing), and a 5-character
// serial of digits and letters; new-energy plates have a 6-character serial: small cars D or F (pure electric
// or not), a letter or digit, then 4 digits; large vehicles 5 digits then D or F.
const PROVINCES = '京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼';

export function plate(r: Prng): string {
  const prefix = `${r.pick([...PROVINCES])}${r.pick([...LETTERS])}`;
  const serial = r.weighted<() => string>([
    [() => r.digits(5), 4],
    [() => `${r.pick([...LETTERS])}${r.digits(4)}`, 3],
    [() => `${r.digits(3)}${r.pick([...LETTERS])}${r.digits(1)}`, 1],
    [() => `${r.pick(['D', 'F'])}${r.chance(0.5) ? r.pick([...LETTERS]) : r.digits(1)}${r.digits(4)}`, 3],
    [() => `${r.digits(5)}${r.pick(['D', 'F'])}`, 1],
  ])();
  const sep = r.weighted([
    ['', 6],
    ['·', 3],
    [' ', 2],
    ['-', 1],
  ] as const);
  return `${prefix}${sep}${serial}`;
}

// ---- WeChat and QQ ids --------------------------------------------------------------------------------------------
// A WeChat id (微信号) that its owner chose: 6-20 characters, letters, digits, "_" and "-", starting with a
// letter (WeChat's own rule, shown when setting one); ids WeChat made itself start with wxid_. QQ numbers are
// 5 digits and more, starting 1-9 (Tencent issues them in sequence; today's are 9-10 digits).
export function wechatId(r: Prng): string {
  const word = () =>
    r.pick(['zhang', 'wang', 'li', 'chen', 'lin', 'xiao', 'mei', 'hao', 'tian', 'yu', 'sun', 'jing', 'Amy', 'Kevin', 'Lucky']);
  return r.weighted<() => string>([
    [
      () => {
        const w = word();
        return `${w}${r.digits(Math.max(6 - w.length, r.int(2, 6)))}`;
      },
      4,
    ],
    [() => `${word()}_${word()}`.padEnd(6, '8') + (r.chance(0.5) ? r.digits(2) : ''), 3],
    [() => `${word()}-${r.digits(4)}`, 1],
    [() => `wxid_${Array.from({ length: 14 }, () => r.pick([...'abcdefghijklmnopqrstuvwxyz0123456789'])).join('')}`, 2],
  ])();
}

export function qqNumber(r: Prng): string {
  return r.digits(
    r.weighted([
      [6, 1],
      [7, 1],
      [8, 2],
      [9, 4],
      [10, 3],
    ] as const),
    '123456789',
  );
}

// ---- Street addresses ------------------------------------------------------------------------------------------
// A mainland address as shipping forms ask for it (GB/T 2260 divisions, then the street): province (省, 自治区,
// or one of the four municipalities), prefecture city (市), district or county (区, 县), sometimes a township
// or subdistrict (街道, 镇), then the road (路, 街, 大道, 巷) with a house number (号), and often a building,
// unit and room. People drop the levels they think obvious (深圳南山区…, 朝阳区…).
const PLACES: readonly { province: string; city: string; districts: readonly string[] }[] = [
  { province: '北京市', city: '', districts: ['朝阳区', '海淀区', '东城区', '丰台区', '通州区'] },
  { province: '上海市', city: '', districts: ['浦东新区', '徐汇区', '静安区', '闵行区', '杨浦区'] },
  { province: '天津市', city: '', districts: ['和平区', '南开区', '滨海新区'] },
  { province: '重庆市', city: '', districts: ['渝中区', '江北区', '沙坪坝区'] },
  { province: '广东省', city: '深圳市', districts: ['南山区', '福田区', '宝安区', '龙岗区'] },
  { province: '广东省', city: '广州市', districts: ['天河区', '越秀区', '番禺区', '白云区'] },
  { province: '广东省', city: '东莞市', districts: ['南城街道', '长安镇'] },
  { province: '浙江省', city: '杭州市', districts: ['西湖区', '余杭区', '滨江区'] },
  { province: '浙江省', city: '宁波市', districts: ['鄞州区', '海曙区'] },
  { province: '江苏省', city: '南京市', districts: ['鼓楼区', '玄武区', '江宁区'] },
  { province: '江苏省', city: '苏州市', districts: ['工业园区', '姑苏区', '吴中区'] },
  { province: '四川省', city: '成都市', districts: ['武侯区', '锦江区', '高新区'] },
  { province: '湖北省', city: '武汉市', districts: ['洪山区', '江汉区', '武昌区'] },
  { province: '陕西省', city: '西安市', districts: ['雁塔区', '碑林区'] },
  { province: '山东省', city: '青岛市', districts: ['市南区', '崂山区'] },
  { province: '福建省', city: '厦门市', districts: ['思明区', '湖里区'] },
  { province: '河南省', city: '郑州市', districts: ['金水区', '中原区'] },
  { province: '湖南省', city: '长沙市', districts: ['岳麓区', '芙蓉区'] },
  { province: '广西壮族自治区', city: '南宁市', districts: ['青秀区', '西乡塘区'] },
  { province: '云南省', city: '大理白族自治州', districts: ['大理市'] },
  { province: '河北省', city: '保定市', districts: ['竞秀区', '涞源县'] },
];
const ROADS: readonly string[] = [
  '科技园南路',
  '建国路',
  '文三路',
  '中关村大街',
  '南京西路',
  '人民路',
  '解放路',
  '中山大道',
  '长江路',
  '学府路',
  '天府大道',
  '珠江新城华夏路',
  '滨海大道',
  '振兴路',
  '新华街',
  '和平里东街',
  '五一路',
  '华强北路',
  '张江路',
  '后海大道',
  '幸福巷',
  '金桥路',
];
const COMMUNITIES: readonly string[] = ['阳光花园', '碧桂园', '万科城', '华润城', '翠苑小区', '金色家园', 'SOHO现代城', '望京西园'];

export function address(r: Prng): string {
  const place = r.pick(PLACES);
  const district = r.pick(place.districts);
  const admin = r.weighted<() => string>([
    [() => `${place.province}${place.city}${district}`, 6],
    [() => `${place.city || place.province}${district}`, 3],
    [() => `${(place.city || place.province).replace(/市$/, '')}${district}`, 1],
    [() => district, 1],
  ])();
  const no = r.int(1, 999);
  const street = r.weighted<() => string>([
    [() => `${r.pick(ROADS)}${no}号`, 5],
    [() => `${r.pick(ROADS)}${no}号${r.pick(COMMUNITIES)}${r.int(1, 30)}栋${r.int(1, 6)}单元${r.int(1, 33)}0${r.int(1, 8)}室`, 3],
    [() => `${r.pick(ROADS)}${no}号${r.int(1, 20)}号楼${r.int(1, 28)}0${r.int(1, 9)}`, 2],
    [() => `${r.pick(ROADS)}${r.int(1, 900)}弄${r.int(1, 99)}号${r.int(1, 20)}0${r.int(1, 4)}室`, 1],
    [() => `${r.pick(ROADS)}${no}-${r.int(1, 9)}号`, 1],
  ])();
  const written = `${admin}${street}`;
  return r.chance(0.05) ? written.replace(/\d/g, (d) => fullWidth(d)) : written;
}

// ---- Names ---------------------------------------------------------------------------------------------------------
// Han names: a surname (the most common ones by the Ministry of Public Security's household-register counts,
// 2020 姓名报告: 王 李 张 刘 陈 ... together most of the population; a few two-character ones such as 欧阳)
// and a given name of one or two characters. Customer service also writes surname + honorific (王女士).
const SURNAMES: readonly string[] = [
  ...'王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫孔向常汤',
  '欧阳',
  '司马',
  '诸葛',
  '上官',
];
const GIVEN: readonly string[] = [
  ...'伟芳娜敏静丽强磊军洋勇艳杰娟涛明超霞平刚鑫宇浩凯婷雪琳晨欣怡嘉瑶楠博文颖佳倩悦萱轩辰睿梓涵子豪诗琪俊峰海燕红梅建华志国秀英桂兰玉兰淑珍',
];

export function personName(r: Prng): string {
  const surname = r.weighted(SURNAMES.map((s, i) => [s, i < 10 ? 6 : s.length > 1 ? 0.4 : 1.5] as const));
  return r.weighted<() => string>([
    [() => `${surname}${r.pick(GIVEN)}${r.pick(GIVEN)}`, 6],
    [() => `${surname}${r.pick(GIVEN)}`, 3],
    [() => `${surname}${r.pick(['先生', '女士', '小姐'])}`, 1],
  ])();
}
