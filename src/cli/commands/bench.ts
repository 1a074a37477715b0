// `cs-llm bench`: the operator's capacity test through the daemon (src/capacity/run.ts). Not `npm run bench`,
// the developers' micro-benchmark of the daemon's own cost (src/bench/).
import { InvalidArgumentError, type Command } from 'commander';
import { UsageError } from '../../core/errors.js';
import type { StepRow } from '../../capacity/ramp.js';
import type { CapacityEvent, CapacityResult } from '../../capacity/run.js';
import { latencyChart, rateText } from '../capacity-chart.js';
import { cancellable } from '../cancellable.js';
import { contextFor, intFlag } from '../context.js';
import { formatTable, paint, type Output } from '../output.js';
import { createProgressReporter, type ProgressAdapter } from '../progress.js';
import { daemonUrlFor } from './dashboard.js';

/** "1.2s", "500ms", "30s", "2m", or a bare number of seconds -> milliseconds. */
export function durationFlag(name: string) {
  return (text: string): number => {
    const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m)?$/.exec(text.trim());
    if (!match) throw new InvalidArgumentError(`${name} must be a duration such as 500ms, 1.2s, 30s or 2m, got "${text}".`);
    const value = Number(match[1]);
    return Math.round(match[2] === 'ms' ? value : match[2] === 'm' ? value * 60_000 : value * 1000);
  };
}

function numberFlag(name: string, min: number, what: string) {
  return (text: string): number => {
    const n = Number(text);
    if (!/^\s*\d+(\.\d+)?\s*$/.test(text) || !(n >= min)) throw new InvalidArgumentError(`${name} must be ${what}, got "${text}".`);
    return n;
  };
}

interface BenchFlags {
  url?: string;
  apiKey?: string;
  model?: string;
  sloP95: number;
  start: number;
  factor: number;
  maxRate: number;
  maxSteps: number;
  refine: number;
  step: number;
  turns: number;
  think: number;
  promptTokens: number;
  replyTokens: number;
  stream: boolean;
  ignoreEos: boolean;
  arrivals: string;
  maxErrors: number;
  timeout: number;
  seed: number;
  json?: boolean;
}

const ms = (seconds: number | undefined) =>
  seconds === undefined ? '-' : seconds < 1 ? `${Math.round(seconds * 1000)}ms` : `${seconds.toFixed(2)}s`;

function stepLine(row: StepRow): string {
  const e2e = row.e2e ? `p95 ${ms(row.e2e.p95)}` : 'no turn completed';
  const failed = row.errors + row.rateLimited > 0 ? `, ${row.errors} errors, ${row.rateLimited} 429s` : '';
  const verdict = row.ok ? 'held' : `broke: ${row.why}`;
  return `${rateText(row.rate)}/s offered: ${row.completedPerSecond.toFixed(1)}/s done, ${e2e}${failed} (${verdict}${row.partial ? ', cut short' : ''})`;
}

function progressAdapter(): ProgressAdapter<CapacityEvent> {
  return {
    updates(e) {
      switch (e.kind) {
        case 'start':
          return [{ kind: 'line', text: `capacity test of ${e.url}, model ${e.model}` }];
        case 'step':
          return [{ kind: 'live', key: `step-${e.index}`, label: `step ${e.index + 1}: ${rateText(e.rate)} turns/s offered`, fraction: 0 }];
        case 'progress':
          return [
            {
              kind: 'live',
              key: `step-${e.index}`,
              label: `step ${e.index + 1}: ${rateText(e.rate)} turns/s offered, ${Math.round(e.elapsedMs / 1000)} of ${Math.round(e.stepMs / 1000)} s, ${e.done} done, ${e.inFlight} in flight`,
              fraction: e.elapsedMs / e.stepMs,
            },
          ];
        case 'row':
          return [{ kind: 'line', text: `step ${e.index + 1}: ${stepLine(e.row)}`, green: e.row.ok }];
      }
    },
    json: (e) => e,
  };
}

/** The sentence an operator quotes. */
export function kneeSentence(result: CapacityResult, sloMs: number): string {
  const slo = ms(sloMs / 1000);
  const k = result.knee;
  if (k && result.rows.every((r) => r.ok || r.partial) && !result.interrupted) {
    return `held the ${slo} SLO at every rate tried, up to ${rateText(k.rate)} turns/s offered (${k.completedPerSecond.toFixed(1)} chats/s done, p95 ${ms(k.e2e!.p95)}); the limit is higher: raise --max-steps or --max-rate`;
  }
  if (k) {
    return `sustains ${k.completedPerSecond.toFixed(1)} chats/s (${rateText(k.rate)} offered) at p95 ${ms(k.e2e!.p95)}, within the ${slo} SLO`;
  }
  const first = result.rows[0];
  if (!first) return 'no step was measured';
  return `the first step (${rateText(first.rate)} turns/s) already broke the ${slo} SLO: ${first.why}; start lower with --start`;
}

function render(output: Output, result: CapacityResult, flags: BenchFlags): void {
  const rows = [...result.rows].sort((a, b) => a.rate - b.rate);
  output.out(
    formatTable(
      ['OFFERED/S', 'DONE/S', 'TOKENS/S', 'TTFT P50', 'P95', 'P99', 'E2E P50', 'P95', 'P99', 'ERRORS', '429S', 'SLO'],
      rows.map((r) => [
        rateText(r.rate),
        r.completedPerSecond.toFixed(1),
        r.tokensPerSecond.toFixed(0),
        ms(r.ttft?.p50),
        ms(r.ttft?.p95),
        ms(r.ttft?.p99),
        ms(r.e2e?.p50),
        ms(r.e2e?.p95),
        ms(r.e2e?.p99),
        String(r.errors),
        String(r.rateLimited),
        r.partial ? 'cut short' : r.ok ? 'held' : 'broke',
      ]),
      output.columns,
    ),
  );
  const chart = latencyChart(rows, { sloSeconds: flags.sloP95 / 1000, width: output.columns });
  if (chart.length > 0) output.out(['', ...chart, ''].join('\n'));
  const sentence = kneeSentence(result, flags.sloP95);
  output.out(paint(output, result.knee ? 'green' : 'yellow', result.interrupted ? `${sentence} (interrupted: so far)` : sentence));
  const problem = result.rows.find((r) => r.problem)?.problem;
  if (problem) output.out(`failed turns: mostly ${problem}`);
}

export function register(program: Command): void {
  program
    .command('bench')
    .description(
      "Capacity test through the daemon: ramps the chat arrival rate until the p95 SLO breaks (not npm run bench, the developers' micro-benchmark)",
    )
    .option('--url <url>', 'an OpenAI-compatible endpoint (default: the running daemon, else daemon.host:daemon.port)')
    .option('--api-key <key>', 'sent as Authorization: Bearer (default: $CS_LLM_API_KEY); never shown')
    .option('--model <name>', 'model to ask for (default: the first the endpoint lists)')
    .option('--slo-p95 <duration>', 'end-to-end p95 a step must hold', durationFlag('--slo-p95'), 1200)
    .option('--start <rate>', 'turns per second offered in the first step', numberFlag('--start', 0.01, 'a rate above 0'), 1)
    .option('--factor <x>', 'each step offers this many times the last', numberFlag('--factor', 1.01, 'a factor above 1'), 1.5)
    .option('--max-rate <rate>', 'stop ramping at this rate', numberFlag('--max-rate', 0.01, 'a rate above 0'), 2000)
    .option('--max-steps <n>', 'at most this many steps', intFlag('--max-steps', { min: 1, max: 100 }), 20)
    .option('--refine <n>', 'steps between the last rate that held and the first that broke', intFlag('--refine', { min: 0, max: 10 }), 2)
    .option('--step <duration>', 'length of each step', durationFlag('--step'), 30_000)
    .option('--turns <n>', 'turns per simulated customer (a session)', intFlag('--turns', { min: 1, max: 1000 }), 4)
    .option('--think <duration>', "a customer's think time between a reply and its next question", durationFlag('--think'), 5000)
    .option('--prompt-tokens <n>', 'length of each question, about', intFlag('--prompt-tokens', { min: 1, max: 100_000 }), 60)
    .option('--reply-tokens <n>', 'length of each reply (max_tokens)', intFlag('--reply-tokens', { min: 1, max: 100_000 }), 120)
    .option('--no-stream', 'ask for whole replies (no time to first token)')
    .option('--no-ignore-eos', 'do not send ignore_eos (for endpoints that refuse it); replies may then be shorter')
    .option('--arrivals <kind>', 'poisson (random, as independent customers) or even', 'poisson')
    .option(
      '--max-errors <percent>',
      'failed turns (errors and 429s) a step may have and still hold',
      numberFlag('--max-errors', 0, 'a percentage'),
      1,
    )
    .option('--timeout <duration>', 'per turn', durationFlag('--timeout'), 60_000)
    .option('--seed <n>', 'seed of the arrivals and questions', intFlag('--seed', { min: 0 }), 1)
    .option('--json', 'print the result as JSON (progress as NDJSON on stderr)')
    .action(async (flags: BenchFlags, command: Command) => {
      if (flags.arrivals !== 'poisson' && flags.arrivals !== 'even') {
        throw new UsageError(`--arrivals "${flags.arrivals}" is not a kind of arrivals`, { next: 'Use poisson or even.' });
      }
      if (flags.sloP95 <= 0) throw new UsageError('--slo-p95 must be above 0', { next: 'For example --slo-p95 1.2s.' });
      const { loaded, output } = await contextFor(command);
      const { runCapacity } = await import('../../capacity/run.js');
      const url = await daemonUrlFor(loaded.config, loaded.paths, flags.url);
      const reporter = await createProgressReporter(output, progressAdapter(), { json: flags.json === true });
      let result: CapacityResult;
      try {
        result = await cancellable((signal) =>
          runCapacity({
            url,
            apiKey: flags.apiKey ?? process.env.CS_LLM_API_KEY,
            model: flags.model,
            sloP95Ms: flags.sloP95,
            maxErrorShare: flags.maxErrors / 100,
            start: flags.start,
            factor: flags.factor,
            maxRate: flags.maxRate,
            maxSteps: flags.maxSteps,
            refine: flags.refine,
            stepMs: flags.step,
            turns: flags.turns,
            thinkMs: flags.think,
            promptTokens: flags.promptTokens,
            replyTokens: flags.replyTokens,
            stream: flags.stream,
            ignoreEos: flags.ignoreEos,
            arrivals: flags.arrivals as 'poisson' | 'even',
            seed: flags.seed,
            timeoutMs: flags.timeout,
            signal,
            onEvent: (e) => reporter.event(e),
          }),
        );
      } finally {
        reporter.close();
      }
      if (flags.json) output.json({ ...result, sloP95Ms: flags.sloP95, summary: kneeSentence(result, flags.sloP95) });
      else render(output, result, flags);
      // Ctrl-C: what was measured is printed, and the exit says it was cut short.
      if (result.interrupted) process.exitCode = 130;
    });
}
