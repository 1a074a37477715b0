/*
 * How the CLI shows things: a table when stdout is a terminal, plain tab-free lines otherwise, JSON on
 * request. Color only on a TTY and never with NO_COLOR (https://no-color.org).
 */

import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import { terminalLine, terminalText, terminalTextKeeping } from '../core/terminal-text.js';

export interface Output {
  isTTY: boolean;
  /**
   * A person at a terminal, both ways: live views (the dashboard) make sense. False under CI=true, where Ink
   * draws only a final frame (its is-in-ci rule), so callers fall back to plain lines there.
   */
  interactive: boolean;
  color: boolean;
  columns: number;
  /** A line (or lines) on stdout; text from outside is made safe for the terminal here (core/terminal-text.ts). */
  out(text: string): void;
  err(text: string): void;
  /** Text on stdout as it comes, without a newline added (a streamed reply), made safe the same way. */
  write(text: string): void;
  /** Exact: JSON is printed as it is. */
  json(value: unknown): void;
}

export function createOutput(
  stdout: NodeJS.WriteStream = process.stdout,
  stderr: NodeJS.WriteStream = process.stderr,
  env: NodeJS.ProcessEnv = process.env,
  stdin: { isTTY?: boolean } = process.stdin,
): Output {
  const isTTY = Boolean(stdout.isTTY);
  const color = isTTY && env.NO_COLOR === undefined && env.TERM !== 'dumb';
  const inCi = ['CI', 'CONTINUOUS_INTEGRATION'].some((name) => env[name] !== undefined && env[name] !== '0' && env[name] !== 'false');
  // The one choke point for what commands print: every control character goes except newline, tab and the
  // colour codes paint() itself writes (when colour is on).
  const safe = (text: string) => terminalTextKeeping(text, color ? OWN_SEQUENCES : []);
  const line = (text: string) => safe(text.endsWith('\n') ? text : `${text}\n`);
  return {
    isTTY,
    interactive: isTTY && Boolean(stdin.isTTY) && !inCi,
    color,
    columns: stdout.columns ?? 100,
    out: (text) => stdout.write(line(text)),
    err: (text) => stderr.write(line(text)),
    write: (text) => stdout.write(safe(text)),
    json: (value) => stdout.write(`${JSON.stringify(value, null, 2)}\n`),
  };
}

/**
 * A stream that passes text on with control characters removed (newlines and tabs kept, carriage returns
 * made newlines): for output copied from outside as it comes, such as an engine's log.
 */
export function terminalStream(target: NodeJS.WritableStream): Writable {
  const decoder = new StringDecoder('utf8');
  return new Writable({
    write(chunk: Buffer | string, _encoding, done) {
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      if (text === '' || target.write(terminalText(text))) done();
      else target.once('drain', () => done());
    },
    final(done) {
      const rest = decoder.end();
      if (rest) target.write(terminalText(rest));
      done();
    },
  });
}

const codes = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1, cyan: 36 } as const;
export type Style = keyof typeof codes;
const OWN_SEQUENCES = [...Object.values(codes), 0].map((code) => `\u001b[${code}m`);

export function paint(output: Pick<Output, 'color'>, style: Style, text: string): string {
  return output.color ? `\u001b[${codes[style]}m${text}\u001b[0m` : text;
}

/**
 * A fixed-width table. Columns shrink from the widest when the terminal is narrow, so a row never wraps;
 * cut cells end in '…'. Without a TTY there is no width limit and cells are separated by two spaces.
 */
export function formatTable(headers: string[], cells: string[][], maxWidth = Infinity): string {
  // Cells often hold names from outside: one line each, no control characters, so widths are true.
  const rows = cells.map((row) => row.map(terminalLine));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const gap = 2;
  let total = widths.reduce((a, b) => a + b, 0) + gap * (widths.length - 1);
  while (total > maxWidth) {
    const widest = widths.indexOf(Math.max(...widths));
    if (widths[widest]! <= 4) break;
    widths[widest]!--;
    total--;
  }
  const cell = (text: string, width: number) => (text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => cell(c, widths[i]!))
      .join(' '.repeat(gap))
      .trimEnd();
  return [line(headers), ...rows.map(line)].join('\n');
}

export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}
