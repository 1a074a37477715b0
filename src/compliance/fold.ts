// Full-width forms folded to ASCII before detection, so that １３８１２３４５６７８ and zhang＠qq．com are
// found like their ASCII spellings. Chinese input methods in full-width mode type the U+FF01-FF5E block
// (Unicode's Halfwidth and Fullwidth Forms, each the ASCII character + 0xFEE0) and the ideographic space
// U+3000. Every fold maps one UTF-16 unit to one, so offsets in the folded text are offsets in the original.

/** The text with full-width ASCII, the ideographic space and the small commercial at (U+FE6B) folded; the same string when there is none. */
export function foldWidth(text: string): string {
  let i = 0;
  const n = text.length;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x3000 && (c === 0x3000 || (c >= 0xff01 && c <= 0xff5e) || c === 0xfe6b)) break;
  }
  if (i === n) return text;
  let out = text.slice(0, i);
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x3000) out += text[i];
    else if (c >= 0xff01 && c <= 0xff5e) out += String.fromCharCode(c - 0xfee0);
    else if (c === 0x3000) out += ' ';
    else if (c === 0xfe6b) out += '@';
    else out += text[i];
  }
  return out;
}
