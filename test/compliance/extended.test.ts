// The extended types of issue 17 (passports, licence plates, WeChat and QQ ids after their cues, street
// addresses, names after cues): what each takes and what it leaves, that each can be switched, and that the
// config's defaults are the detectors' own.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildDetectors, redactText } from '../../src/compliance/detectors.js';
import { EXTENDED_DETECTORS, type ExtendedType } from '../../src/compliance/extended.js';
import { zodSchemas } from '../../src/core/config-schema.js';

const redact = (text: string, settings = {}) => redactText(text, buildDetectors(settings));

test('passports, plates (new-energy ones too), WeChat and QQ ids after their cues, addresses and names are replaced', () => {
  const cases: Array<[string, string]> = [
    ['护照号G12345678，出境要用', '护照号[PASSPORT]，出境要用'],
    ['港澳通行证 C12345678', '港澳通行证 [PASSPORT]'],
    ['车牌号沪A12345', '车牌号[PLATE]'],
    ['我的车京N·F12345，新能源', '我的车[PLATE]，新能源'],
    ['苏E8888D是新能源大车', '[PLATE]是新能源大车'],
    ['加我微信zhang_wei88发照片', '加我微信[WECHAT]发照片'],
    ['微信：wxid_abcdefgh1234', '微信：[WECHAT]'],
    ['我的QQ 123456789', '我的QQ [QQ]'],
    ['寄到上海市浦东新区世纪大道100号，谢谢', '寄到[ADDRESS]，谢谢'],
    ['我家在成都市武侯区人民南路四段12号', '我家在[ADDRESS]'],
    ['送到北京朝阳区建国路88号SOHO现代城2号楼1801', '送到[ADDRESS]'],
    ['收货地址改一下：浙江省杭州市西湖区文三路 90 号 2 号楼 1801 室。', '收货地址改一下：[ADDRESS]。'],
    ['我叫王大锤，订单没到', '我叫[NAME]，订单没到'],
    ['收件人：欧阳娜娜，电话：13812345678', '收件人：[NAME]，电话：[PHONE]'],
    ['张伟收，电话138 1234 5678', '[NAME]收，电话[PHONE]'],
  ];
  for (const [text, expected] of cases) assert.equal(redact(text), expected, text);
});

test('without their cue or shape they stay: model numbers, QQ groups, plain roads, words after a name cue', () => {
  for (const text of [
    '型号G12345678的配件还有吗',
    '型号A12345有黑色吗',
    'QQ群 987654321 里问过了',
    '微信支付了100元',
    '我要去人民路10号的门店',
    '联系人方式是什么',
    '收件人不在家，放门口',
    '我叫车去机场',
    '请联系客服热线',
  ]) {
    assert.equal(redact(text), text);
  }
});

test('each extended type can be switched off, and the config defaults are the detectors own', () => {
  const text = '我叫王大锤，车牌号沪A12345';
  assert.equal(redact(text), '我叫[NAME]，车牌号[PLATE]');
  assert.equal(redact(text, { name: false }), '我叫王大锤，车牌号[PLATE]');
  assert.equal(redact(text, { plate: false, name: false }), text);
  const defaults = zodSchemas().configSchema.parse({}).store.redaction as unknown as Record<ExtendedType, boolean>;
  for (const [type, detector] of Object.entries(EXTENDED_DETECTORS) as Array<[ExtendedType, { defaultOn: boolean }]>) {
    assert.equal(defaults[type], detector.defaultOn, `store.redaction.${type} defaults to the detector's own`);
  }
});
