import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bodyBoundProblem, longestTokenBytes, messagesTextBytes, promptBounds, textBoundProblem } from '../../src/cpu/prompt-bound.js';

test('the longest token is measured in bytes of text, special tokens included, plus one for a leading space detokenizing drops', async () => {
  const texts = ['a', 'hello', '<|im_start|>', 'é', '🙂'];
  const model = { iterateAllTokens: () => texts.keys(), detokenize: (tokens: number[]) => tokens.map((t) => texts[t]).join('') };
  assert.equal(await longestTokenBytes(model), 13);
  // A vocabulary larger than one slice of the walk: the longest token sits at its end.
  const big = Array.from({ length: 10_000 }, (_, i) => (i === 9_999 ? '-'.repeat(64) : 'ab'));
  assert.equal(await longestTokenBytes({ iterateAllTokens: () => big.keys(), detokenize: (tokens: number[]) => big[tokens[0]!]! }), 65);
});

test('the bounds follow from the context: text at context x longest token, the body at 6x that (JSON escapes) plus room for the rest, at most 16 MiB', () => {
  assert.deepEqual(promptBounds(512, 13), {
    contextSize: 512,
    tokenBytes: 13,
    textBytes: 6656,
    bodyBytes: 6 * 6656 + 65_536,
    bodyFromContext: true,
  });
  assert.deepEqual(promptBounds(131_072, 256), {
    contextSize: 131_072,
    tokenBytes: 256,
    textBytes: 131_072 * 256,
    bodyBytes: 16 * 1024 * 1024,
    bodyFromContext: false,
  });
});

test('text that needs more tokens than the context, even at the longest token each, is refused with the counts named', () => {
  const bounds = promptBounds(512, 13);
  assert.equal(textBoundProblem(bounds, 511 * 13, undefined), undefined);
  assert.equal(textBoundProblem(bounds, 510 * 13, 2), undefined);
  const full = textBoundProblem(bounds, 512 * 13, undefined);
  assert.equal(full?.status, 400);
  assert.equal(full?.param, 'messages');
  assert.match(full!.message, /maximum context length is 512 tokens.*6656 bytes of text.*longer than 13 bytes.*at least 512 tokens/);
  assert.match(textBoundProblem(bounds, 511 * 13, 2)!.message, /at least 511 tokens, and 2 in the completion/);
});

test('a body over the bound from the context is a 400 (a prompt that cannot fit) naming its size when known; over the 16 MiB cap a 413', () => {
  const bounds = promptBounds(512, 13);
  const known = bodyBoundProblem(bounds, 15_600_000);
  assert.equal(known.status, 400);
  assert.equal(known.param, 'messages');
  assert.match(
    known.message,
    /maximum context length is 512 tokens.*a request body of 15600000 bytes, more than the 105472 that can carry 6656 bytes of text/,
  );
  assert.match(bodyBoundProblem(bounds, undefined).message, /a request body over 105472 bytes/);
  const capped = bodyBoundProblem(promptBounds(131_072, 256), 20_000_000);
  assert.equal(capped.status, 413);
  assert.match(capped.message, /larger than 16777216 bytes/);
});

test('message text is counted in UTF-8 bytes, from strings and text parts', () => {
  assert.equal(
    messagesTextBytes([
      { role: 'user', content: 'é€' },
      { role: 'user', content: [{ type: 'text', text: 'ab' }, { type: 'image_url' }] },
      { role: 'assistant' },
    ]),
    2 + 3 + 2,
  );
});
