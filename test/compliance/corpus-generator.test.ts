// The redaction corpus generator itself (test/compliance/corpus/): the same seed gives the same corpus, the
// labels are where the values are, and the values are valid by their own standards (check digits, segments),
// so the detectors' figures measure the detectors, not a broken corpus.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CORPUS_SEED, CORPUS_SIZE, generateCorpus, HOLDOUT_SEED } from './corpus/generate.js';
import { ean13 } from './corpus/negative-formats.js';
import { gb11643Check, luhnCheckDigit } from './corpus/personal-formats.js';
import { Prng } from './corpus/prng.js';

const ascii = (s: string) => s.replace(/[\uff01-\uff5e]/g, (c) => String.fromCharCode(c.charCodeAt(0) - 0xfee0)).replace(/\u3000/g, ' ');
const digitsOf = (s: string) => ascii(s).replace(/[^0-9Xx]/g, '');

test('the same seed gives the same corpus, another seed another one', () => {
  assert.deepEqual(generateCorpus(CORPUS_SEED, 50), generateCorpus(CORPUS_SEED, 50));
  assert.notDeepEqual(generateCorpus(CORPUS_SEED, 50), generateCorpus(HOLDOUT_SEED, 50));
});

test('the corpus is several hundred messages, mostly Chinese, with spans inside the text that never overlap', () => {
  const corpus = generateCorpus(CORPUS_SEED, CORPUS_SIZE);
  assert.ok(corpus.length >= 300);
  const chinese = corpus.filter((m) => /[\u4e00-\u9fff]/.test(m.text)).length;
  assert.ok(chinese / corpus.length > 0.85, `${chinese} of ${corpus.length} messages hold Chinese`);
  for (const m of corpus) {
    const spans = [...m.spans].sort((a, b) => a.start - b.start);
    for (let i = 0; i < spans.length; i++) {
      const s = spans[i]!;
      assert.ok(s.start >= 0 && s.end <= m.text.length && s.start < s.end, `span inside: ${m.text}`);
      assert.ok(i === 0 || spans[i - 1]!.end <= s.start, `spans do not overlap: ${m.text}`);
      assert.equal(m.text.slice(s.start, s.end).trim(), m.text.slice(s.start, s.end), `no blank at a span's edge: ${m.text}`);
    }
  }
});

test('every value is valid by its standard: GB 11643 check characters, Luhn, mobile segments, area codes', () => {
  const corpus = generateCorpus(CORPUS_SEED, CORPUS_SIZE);
  const values = (type: string) => corpus.flatMap((m) => m.spans.filter((s) => s.type === type).map((s) => m.text.slice(s.start, s.end)));
  for (const v of values('id18')) {
    const d = digitsOf(v).toUpperCase();
    assert.equal(d.length, 18, v);
    assert.equal(gb11643Check(d.slice(0, 17)), d[17], `check character of ${v}`);
  }
  for (const v of values('id15')) assert.equal(digitsOf(v).length, 15, v);
  for (const v of values('card')) {
    const d = digitsOf(v);
    assert.ok(d.length >= 16 && d.length <= 19, v);
    assert.equal(luhnCheckDigit(d.slice(0, -1)), d.slice(-1), `Luhn of ${v}`);
  }
  for (const v of values('mobile')) {
    const national = digitsOf(v).replace(/^(00)?86(?=1\d{10}$)/, '');
    assert.match(national, /^1(3\d|4[579]|5[0-35-9]|6[2567]|7[0-8]|8\d|9[0-35-9])\d{8}$/, v);
  }
  for (const v of values('landline')) {
    const national = digitsOf(v)
      .replace(/^(00)?86(?!$)/, '')
      .replace(/^(?!0)/, '0');
    assert.match(national, /^0(10|2\d|[3-9]\d\d)[2-8]\d{6,7}\d{0,4}$|^0[2-8]\d{7}$/, v);
  }
  for (const v of values('email')) assert.match(ascii(v), /^[^@\s]+@[^@\s]+\.[^@\s.]+$/, v);
});

test('the negatives include the traps: EAN-13 barcodes and order and tracking numbers that pass the Luhn check', () => {
  const r = new Prng(1);
  const code = ean13(r, true);
  assert.equal(luhnCheckDigit(code.slice(0, -1)), code.slice(-1));
  const corpus = generateCorpus(CORPUS_SEED, CORPUS_SIZE);
  const luhnNegatives = corpus.flatMap((m) =>
    m.spans
      .filter((s) => !s.positive && /^\d{13,19}$/.test(m.text.slice(s.start, s.end)))
      .map((s) => m.text.slice(s.start, s.end))
      .filter((d) => luhnCheckDigit(d.slice(0, -1)) === d.slice(-1)),
  );
  assert.ok(luhnNegatives.length >= 20, `${luhnNegatives.length} Luhn-valid negatives`);
});
