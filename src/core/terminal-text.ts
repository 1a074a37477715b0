/*
 * Text from outside (a model id or reply from the engine, a customer's stored message, an upstream's name or
 * error text, a bundle's member names, engine logs) made safe to show on the operator's terminal. C0 and C1
 * control characters (U+0000-U+001F, U+007F-U+009F) start escape sequences that retitle the window, rewrite
 * the screen or, on some terminals, do worse; they are removed. Newline and tab stay where text is shown as
 * text; a one-line field turns them into spaces. JSON output never goes through here: it stays exact.
 */

// Every C0 control but tab and newline, DEL, and every C1 control.
const CONTROLS = /[\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g;
const CONTROLS_AND_BREAKS = /[\u0000-\u001F\u007F-\u009F]/g;
// Lone or paired carriage returns, which would let text overwrite the line it is on.
const RETURNS = /\r\n?/g;

/** Text shown as text: newlines and tabs kept (a carriage return becomes a newline), every other control removed. */
export function terminalText(text: string): string {
  return text.replace(RETURNS, '\n').replace(CONTROLS, '');
}

/** A one-line field (a table cell, a progress label, a name): newlines and tabs become spaces, other controls go. */
export function terminalLine(text: string): string {
  return text.replace(CONTROLS_AND_BREAKS, (c) => (c === '\n' || c === '\t' || c === '\r' ? ' ' : ''));
}

/** A copy of a plain value (objects and arrays, as JSON would hold) with every string made a one-line field. */
export function terminalLines<T>(value: T): T {
  if (typeof value === 'string') return terminalLine(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => terminalLines(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) out[key] = terminalLines(v);
    return out as T;
  }
  return value;
}

/**
 * Text written by cs-llm itself with its own colours: `keep` lists the exact escape sequences it emits (the
 * SGR codes of paint()); those survive, every other control character is removed. A sequence from outside
 * that happens to equal one of them only sets a colour.
 */
export function terminalTextKeeping(text: string, keep: readonly string[]): string {
  if (keep.length === 0 || !text.includes('\u001b')) return terminalText(text);
  const pattern = new RegExp(`(${keep.map((k) => k.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|')})`);
  return text
    .split(pattern)
    .map((part, i) => (i % 2 === 1 ? part : terminalText(part)))
    .join('');
}
