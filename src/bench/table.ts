import type { LoadResult } from './load.js';

// The table of #21, printed by `npm run bench`: the daemon beside the bare relay and the engine direct, measured
// in the same run, with the ratios and the goals.

export type Measured = LoadResult & { name: string; concurrency: number; daemonCpuUs: number | null };

export interface SpeedFigures {
  /** At 1 connection. */
  latency: { direct: Measured; relay: Measured; stateless: Measured; session: Measured };
  /** At 50 connections. */
  throughput: { direct: Measured; relay: Measured; stateless: Measured; session: Measured };
  /** The session load before "RSS after load", at 50 connections. */
  minute: Measured;
  /** 50 concurrent streams. */
  streams: { direct: Measured; relay: Measured; daemon: Measured };
  /** One stateless stream through the daemon (and the relay) equals the engine's, id and created aside. */
  streamIdentical: boolean;
  relayStreamIdentical: boolean;
  /** The daemon's, in MiB. */
  rss: {
    idle: number | null;
    afterLoad: number | null;
    peak: number | null;
    /** Of idle and afterLoad, the process's own memory (RssAnon), without mapped files (node's binary, the database file). */
    idleAnon: number | null;
    afterLoadAnon: number | null;
    /** Idle again after settleSeconds more without a request: the idle figure the goal is judged on. */
    settled: number | null;
    settledAnon: number | null;
    settleSeconds: number;
    loadSeconds: number;
  };
}

const rate = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}k` : n.toFixed(0));
const ms = (n: number) => n.toFixed(3);
/** A difference with its sign: the daemon can come out ahead of the relay at 1 connection in a noisy run. */
const signedMs = (n: number) => (n < 0 ? ms(n) : `+${ms(n)}`);
const x = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
const mib = (n: number | null) => (n === null ? '-' : n.toFixed(0));
const verdict = (ok: boolean) => (ok ? 'met' : 'NOT met');

export function speedTable(f: SpeedFigures): string {
  const { latency: l, throughput: t, streams: s, rss } = f;
  const added = (m: Measured) => ({ p50: m.p50Ms - l.direct.p50Ms, p99: m.p99Ms - l.direct.p99Ms });
  const [relay, stateless, session] = [added(l.relay), added(l.stateless), added(l.session)];
  const rows: string[][] = [
    ['', 'engine direct', 'bare relay', 'daemon', 'ratio', 'goal', ''],
    [
      'req/s at 50 connections, stateless',
      rate(t.direct.requestsPerSecond),
      rate(t.relay.requestsPerSecond),
      rate(t.stateless.requestsPerSecond),
      `${x(t.stateless.requestsPerSecond, t.relay.requestsPerSecond)} of relay`,
      '>= 0.9x',
      verdict(t.stateless.requestsPerSecond >= 0.9 * t.relay.requestsPerSecond),
    ],
    [
      'req/s at 50 connections, session turns',
      '',
      '',
      rate(t.session.requestsPerSecond),
      `${x(t.session.requestsPerSecond, t.relay.requestsPerSecond)} of relay`,
      '>= 0.6x',
      verdict(t.session.requestsPerSecond >= 0.6 * t.relay.requestsPerSecond),
    ],
    [
      'added at 1 connection, p50 / p99 ms, stateless',
      `${ms(l.direct.p50Ms)} / ${ms(l.direct.p99Ms)} (itself)`,
      `${ms(relay.p50)} / ${ms(relay.p99)}`,
      `${ms(stateless.p50)} / ${ms(stateless.p99)}`,
      `p50 ${signedMs(stateless.p50 - relay.p50)}`,
      'p50 <= relay +0.03, p99 <= 1',
      verdict(stateless.p50 - relay.p50 <= 0.03 && stateless.p99 <= 1),
    ],
    [
      'added at 1 connection, p50 / p99 ms, session',
      '',
      '',
      `${ms(session.p50)} / ${ms(session.p99)}`,
      `p50 ${signedMs(session.p50 - relay.p50)}`,
      'p50 <= relay +0.10, p99 <= 1',
      verdict(session.p50 - relay.p50 <= 0.1 && session.p99 <= 1),
    ],
    [
      'SSE streams/s, 50 concurrent, stateless',
      rate(s.direct.requestsPerSecond),
      rate(s.relay.requestsPerSecond),
      rate(s.daemon.requestsPerSecond),
      `${x(s.daemon.requestsPerSecond, s.relay.requestsPerSecond)} of relay, ${x(s.daemon.requestsPerSecond, s.direct.requestsPerSecond)} of direct`,
      '>= 0.8x of relay, bytes identical',
      `${verdict(s.daemon.requestsPerSecond >= 0.8 * s.relay.requestsPerSecond && f.streamIdentical)}${f.streamIdentical ? '' : ' (stream DIFFERS)'}`,
    ],
    [
      `daemon RSS MiB: idle / after ${rss.loadSeconds} s of session load / peak`,
      '',
      '',
      `${mib(rss.settled)} / ${mib(rss.afterLoad)} / ${mib(rss.peak)}`,
      '',
      '<= 80 / <= 150',
      verdict(rss.settled !== null && rss.afterLoad !== null && rss.settled <= 80 && rss.afterLoad <= 150),
    ],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '));
  const cpu = [l.stateless, l.session, t.stateless, t.session, s.daemon]
    .map((m) => `${m.name} c=${m.concurrency} ${m.daemonCpuUs === null ? '-' : m.daemonCpuUs.toFixed(0)}`)
    .join(', ');
  const errors = [...Object.values(l), ...Object.values(t), ...Object.values(s)].reduce((n, m) => n + m.errors, 0);
  return [
    ...lines,
    '',
    `daemon CPU us per request: ${cpu}`,
    `session turns during the ${rss.loadSeconds} s of load: ${rate(f.minute.requestsPerSecond)}/s, p50 ${ms(f.minute.p50Ms)} ms, errors ${f.minute.errors}`,
    `1-connection p50 / p99 ms as measured: direct ${ms(l.direct.p50Ms)} / ${ms(l.direct.p99Ms)}, relay ${ms(l.relay.p50Ms)} / ${ms(l.relay.p99Ms)}, stateless ${ms(l.stateless.p50Ms)} / ${ms(l.stateless.p99Ms)}, session ${ms(l.session.p50Ms)} / ${ms(l.session.p99Ms)}`,
    `daemon RSS idle ${mib(rss.settled)} MiB is ${rss.settleSeconds} s after its first answer; 0.5 s after it: ${mib(rss.idle)} MiB (start-up garbage not yet collected, the checkpoint thread still running)`,
    `daemon RSS without mapped files (RssAnon: node's binary and its libraries are file pages): idle ${mib(rss.settledAnon)} (0.5 s after the answer ${mib(rss.idleAnon)}), after load ${mib(rss.afterLoadAnon)} MiB`,
    `stream through the relay identical to the engine's: ${f.relayStreamIdentical}; through the daemon: ${f.streamIdentical} (id and created blanked); errors in all rows: ${errors}`,
  ].join('\n');
}
