import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countTokens, splitTokens } from '../../src/sim/tokenizer.js';

test('a token is a word or one punctuation mark, and whitespace rides on the token after it', () => {
  assert.deepEqual(splitTokens('Hello, world!'), ['Hello', ',', ' world', '!']);
  assert.equal(countTokens('Hello, world!'), 4);
});

test('the pieces of a text put back together give the text, trailing spaces included', () => {
  for (const text of ['  two  spaces  ', 'order_id: 12345\nnext line ', '{"a":"b"}', 'naïve café – ok']) {
    assert.equal(splitTokens(text).join(''), text);
    assert.equal(splitTokens(text).length, countTokens(text));
  }
});

test('an empty or all-space text has no tokens', () => {
  assert.deepEqual(splitTokens(''), []);
  assert.deepEqual(splitTokens('   '), []);
  assert.equal(countTokens(' \n '), 0);
});
