/*
 * The simulator's tokenizer: a token is a run of letters/digits/underscore, or any single other
 * non-space character. Whitespace belongs to the token after it. Deterministic and documented in
 * docs/sim.md so tests can predict usage numbers.
 */

const TOKEN = /\s*(?:[\p{L}\p{N}_]+|[^\s\p{L}\p{N}_])/gu;

/** Split text into pieces whose concatenation is the text; each piece is one token (plus leading space). */
export function splitTokens(text: string): string[] {
  const pieces = text.match(TOKEN) ?? [];
  const consumed = pieces.reduce((n, p) => n + p.length, 0);
  // Trailing whitespace has no token of its own; keep it on the last piece so nothing is lost.
  if (consumed < text.length) {
    const tail = text.slice(consumed);
    if (pieces.length === 0) return [];
    pieces[pieces.length - 1] += tail;
  }
  return pieces;
}

export function countTokens(text: string): number {
  return text.match(TOKEN)?.length ?? 0;
}
