import { buildDetectors } from '../compliance/detectors.js';
import { redactMessage } from '../compliance/redact.js';
import { percentile } from '../metrics/quantile.js';

export interface RedactionBenchResult {
  /** What the messages hold. */
  kind: 'typical' | 'dense' | 'plain';
  /** Average UTF-8 size of one message. */
  bytes: number;
  /** Personal data values per message (what the detectors replaced). */
  valuesPerMessage: number;
  /** Median and 99th percentile over batches, in µs of CPU time per KB of message. */
  p50UsPerKb: number;
  p99UsPerKb: number;
}

// Customer-service lines as customers write them (none from the detectors' test corpus): a few carry
// personal data, most carry numbers that must stay (orders, waybills, prices, dates, hotlines).
const LINES = [
  '你好，我上周买的空气炸锅到现在还没发货，订单号 2024051712345678，麻烦帮我查一下。',
  '物流显示已经到了派送站，快递单号 SF1402837465921，但是三天都没更新了。',
  '我的手机号是 138 1234 5678，快递员可以直接打这个电话，白天都在家。',
  '实付 399.00 元，用了一张 50 元的优惠券，发票抬头写个人就可以。',
  '收货地址改一下：浙江省杭州市西湖区文三路 90 号东部软件园 2 号楼 1801 室。',
  '客服热线 400-820-8820 一直占线，打了好几次都没人接，只好在这里留言。',
  '如果今天发不了货就帮我退款吧，退到原来的支付方式就行，谢谢。',
  '另外我想问一下，这款有没有黑色的？型号是 KZ-3500，页面上只看到白色。',
  '上次买的电饭煲 5 月 17 日签收的，用了两周内胆就掉漆了，能换一个吗？',
  '邮箱 zhang.wei@example.com 可以收电子发票，麻烦发到这里。',
  '收件人：王芳，电话 021-6552 9988 转 123，工作日 9 点到 6 点。',
  '我查了一下银行卡 6222 0212 3456 7890 128 还没有收到退款，已经过了七个工作日。',
  '好的，那我再等等，有消息麻烦第一时间通知我，辛苦了。',
  '这个商品条码 6901234567892 扫出来是另外一个东西，是不是发错货了？',
];

/** The lines without personal data (numbers that must stay are left: the detectors still read them). */
const PLAIN = LINES.filter((l) => !/\d{7}|@|收件人|地址/.test(l.replace(/\s/g, '')));

/** About 1 KB of lines picked in turn from `lines`, starting at `from`. */
function message(lines: readonly string[], from: number): string {
  let out = '';
  for (let i = from; Buffer.byteLength(out) < 1000; i++) out += `${lines[i % lines.length]!}\n`;
  // A flat string, as the daemon gets it from JSON.parse (a concatenated one is slower to scan).
  return JSON.parse(JSON.stringify(out)) as string;
}

/** The dense case: every line carries a number or an address, some two. */
function denseMessage(from: number): string {
  return message(
    LINES.filter((l) => /\d{7}|@|地址/.test(l.replace(/\s/g, ''))),
    from,
  );
}

/**
 * The cost of redacting one stored message (redactMessage with every built-in type on, as the store calls it),
 * in µs per KB: 20 messages of about 1 KB each kind, redacted in batches of 200 after a warm-up; the median
 * and 99th percentile batch. CPU time of this process (it runs nothing else meanwhile), not wall time: on a
 * shared machine the wall clock measures the neighbours.
 */
export function benchRedaction(batches = 60): RedactionBenchResult[] {
  const detectors = buildDetectors();
  const out: RedactionBenchResult[] = [];
  const kinds: Array<[RedactionBenchResult['kind'], (i: number) => string]> = [
    ['typical', (i) => message(LINES, i)],
    ['dense', denseMessage],
    ['plain', (i) => message(PLAIN, i)],
  ];
  for (const [kind, make] of kinds) {
    const messages = Array.from({ length: 20 }, (_, i) => ({ role: 'user', content: make(i) }));
    const kb = messages.reduce((n, m) => n + Buffer.byteLength(m.content), 0) / messages.length / 1024;
    let values = 0;
    for (const m of messages) values += (String(redactMessage(m, detectors).content).match(/\[[A-Z_]+\]/g) ?? []).length;
    for (let i = 0; i < 2000; i++) redactMessage(messages[i % messages.length]!, detectors);
    const perKb: number[] = [];
    for (let b = 0; b < batches; b++) {
      const start = process.cpuUsage();
      for (let i = 0; i < 200; i++) redactMessage(messages[i % messages.length]!, detectors);
      const used = process.cpuUsage(start);
      perKb.push((used.user + used.system) / 200 / kb);
    }
    perKb.sort((a, b) => a - b);
    out.push({
      kind,
      bytes: Math.round(kb * 1024),
      valuesPerMessage: values / messages.length,
      p50UsPerKb: percentile(perKb, 50),
      p99UsPerKb: percentile(perKb, 99),
    });
  }
  return out;
}
