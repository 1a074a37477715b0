/*
 * `npm run bench`'s flags (src/bench/main.ts): parsed strictly, so that a mistyped flag or value is refused
 * with the usage instead of a five-minute run with the defaults, and --help prints the usage and runs nothing.
 */

import { parseArgs } from 'node:util';

export const BENCH_USAGE = `usage: npm run bench -- [flags]   (after npm run build)

  --quick                 1 s per measurement, 2,000 sessions, no store bench: checks that it works
  --duration <s>          seconds per measurement (5; quick 1)
  --warmup <s>            seconds of warm-up before each (1; quick 0.3)
  --rounds <n>            slices the compared paths take turns in (5; quick 2)
  --load-seconds <s>      session load before "RSS after load" (60; quick 3)
  --sessions <n>          sessions seeded in the daemon's database (100000; quick 2000)
  --store-sessions <n>    sessions for the store bench alone (100000; 0 skips it; quick 0)
  --only <part>           redaction, or postgres (the PostgreSQL comparison alone)
  --postgres-url <url>    session turns on PostgreSQL in that database instead of a throwaway cluster
  --out <dir>             where bench-<time>.json goes (bench-results)
  -h, --help              this text`;

const NUMBERS = ['duration', 'warmup', 'rounds', 'load-seconds', 'sessions', 'store-sessions'] as const;
const ONLY = ['redaction', 'postgres'];

export type BenchArgs = { quick: boolean; help: boolean } & Partial<
  Record<(typeof NUMBERS)[number] | 'only' | 'postgres-url' | 'out', string>
>;

/** The flags given, or an Error whose message names the bad one (the caller prints it with the usage). */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
      only: { type: 'string' },
      out: { type: 'string' },
      'postgres-url': { type: 'string' },
      ...Object.fromEntries(NUMBERS.map((name) => [name, { type: 'string' as const }])),
    },
  });
  const given = values as Record<string, string | boolean | undefined>;
  for (const name of NUMBERS) {
    const value = given[name] as string | undefined;
    if (value !== undefined && !(Number.isFinite(Number(value)) && Number(value) >= 0 && value.trim() !== '')) {
      throw new Error(`--${name} wants a number of 0 or more, got "${value}"`);
    }
  }
  if (values.only !== undefined && !ONLY.includes(values.only)) {
    throw new Error(`--only wants one of ${ONLY.join(', ')}, got "${values.only}"`);
  }
  return { ...values } as BenchArgs;
}
