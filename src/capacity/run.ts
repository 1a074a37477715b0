/*
 * `cs-llm bench`: the operator's capacity test (docs/cost-and-capacity.md). Not `npm run bench`, the
 * developers' micro-benchmark of the daemon's own cost (src/bench/).
 *
 * Simulated customers hold multi-turn sessions against an OpenAI-compatible endpoint (the daemon by default).
 * Turns arrive open-loop at the step's rate (Poisson, or evenly spaced): a turn is timed from when it was due,
 * not from when the load generator got round to it, so a server that falls behind shows it in its latency. The
 * rate grows step by step until the end-to-end p95 breaks the SLO (or too many turns fail), then a few steps
 * narrow down between the last rate that held and the first that broke. Aborting (Ctrl-C) ends the step in
 * progress and returns what was measured.
 */

import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import { EnvironmentError } from '../core/errors.js';
import { Customers, question, seededRandom } from './customers.js';
import { kneeOf, nextRate, summarizeStep, type RampOptions, type StepRow, type TurnOutcome } from './ramp.js';
import { sendTurn } from './turn.js';

export interface CapacityOptions extends RampOptions {
  /** The endpoint's base URL (a trailing /v1 is accepted). */
  url: string;
  apiKey?: string | undefined;
  /** Unset: the first model the endpoint lists. */
  model?: string | undefined;
  sloP95Ms: number;
  /** Largest share of failed turns (errors and 429s) a step may have and still hold. */
  maxErrorShare: number;
  stepMs: number;
  /** Turns per customer, think time between them. */
  turns: number;
  thinkMs: number;
  promptTokens: number;
  replyTokens: number;
  stream: boolean;
  ignoreEos: boolean;
  arrivals: 'poisson' | 'even';
  seed: number;
  /** Per turn. */
  timeoutMs: number;
  signal?: AbortSignal;
  onEvent?: (event: CapacityEvent) => void;
}

export type CapacityEvent =
  | { kind: 'start'; url: string; model: string }
  | { kind: 'step'; index: number; rate: number }
  | { kind: 'progress'; index: number; rate: number; elapsedMs: number; stepMs: number; done: number; inFlight: number }
  | { kind: 'row'; index: number; row: StepRow };

export interface CapacityResult {
  url: string;
  model: string;
  rows: StepRow[];
  /** The highest rate that held the SLO; null when none did. */
  knee: StepRow | null;
  /** Stopped by the signal (Ctrl-C) before it was done. */
  interrupted: boolean;
}

function baseUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/v1$/, '');
}

async function servedModel(o: CapacityOptions, url: string, dispatcher: Agent): Promise<string> {
  let status = 0;
  let text = '';
  try {
    const res = await request(`${url}/v1/models`, {
      dispatcher,
      headers: o.apiKey ? { authorization: `Bearer ${o.apiKey}` } : {},
      signal: AbortSignal.timeout(10_000),
    });
    status = res.statusCode;
    text = await res.body.text();
  } catch (err) {
    throw new EnvironmentError(`nothing answers at ${url} (${(err as { code?: string }).code ?? (err as Error).message})`, {
      next: 'Start the daemon (cs-llm daemon start, or cs-llm up), or point --url at an OpenAI-compatible endpoint.',
    });
  }
  if (status === 401) {
    throw new EnvironmentError(`${url} wants an API key (HTTP 401)`, { next: 'Pass --api-key, or set CS_LLM_API_KEY.' });
  }
  if (o.model) return o.model;
  try {
    const id = (JSON.parse(text) as { data?: Array<{ id?: unknown }> }).data?.[0]?.id;
    if (status === 200 && typeof id === 'string') return id;
  } catch {
    // not JSON: below
  }
  throw new EnvironmentError(`${url}/v1/models did not name a model (HTTP ${status})`, { next: 'Pass the model with --model.' });
}

export async function runCapacity(o: CapacityOptions): Promise<CapacityResult> {
  const url = baseUrl(o.url);
  const dispatcher = new Agent({ keepAliveTimeout: 30_000, connections: null });
  const stop = new AbortController();
  // Every turn in flight listens to it.
  setMaxListeners(0, stop.signal);
  const onAbort = () => stop.abort();
  o.signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const model = await servedModel(o, url, dispatcher);
    o.onEvent?.({ kind: 'start', url, model });
    const random = seededRandom(o.seed);
    const runId = `cs-llm-bench-${Date.now().toString(36)}`;
    const rows: StepRow[] = [];
    for (let index = 0; !stop.signal.aborted; index++) {
      const rate = nextRate(rows, o);
      if (rate === null) break;
      o.onEvent?.({ kind: 'step', index, rate });
      const customers = new Customers({ turns: o.turns, thinkMs: o.thinkMs, prefix: `${runId}-${index}` });
      const row = await runStep({ o, url, model, rate, index, dispatcher, random, customers, signal: stop.signal });
      // Cut short before any turn came back: nothing measured.
      if (row.partial && row.sent === 0) break;
      rows.push(row);
      o.onEvent?.({ kind: 'row', index, row });
    }
    return { url, model, rows, knee: kneeOf(rows), interrupted: o.signal?.aborted === true };
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    await dispatcher.destroy();
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

interface StepContext {
  o: CapacityOptions;
  url: string;
  model: string;
  rate: number;
  index: number;
  dispatcher: Agent;
  random: () => number;
  customers: Customers;
  signal: AbortSignal;
}

async function runStep(s: StepContext): Promise<StepRow> {
  const { o, rate, signal } = s;
  const outcomes: TurnOutcome[] = [];
  const inFlight = new Set<Promise<void>>();
  const started = performance.now();
  const end = started + o.stepMs;
  const gap = () => (o.arrivals === 'even' ? 1000 / rate : (-Math.log(1 - s.random()) * 1000) / rate);
  const ticker = setInterval(() => {
    const elapsedMs = Math.min(o.stepMs, performance.now() - started);
    o.onEvent?.({ kind: 'progress', index: s.index, rate, elapsedMs, stepMs: o.stepMs, done: outcomes.length, inFlight: inFlight.size });
  }, 1000);
  try {
    let due = started + (o.arrivals === 'even' ? 0 : gap());
    while (due < end && !signal.aborted) {
      const wait = due - performance.now();
      if (wait > 1) {
        await sleep(wait, signal);
        if (signal.aborted) break;
      }
      const dueAt = due;
      const customer = s.customers.take(dueAt);
      const turn = sendTurn({
        dispatcher: s.dispatcher,
        url: s.url,
        apiKey: o.apiKey,
        model: s.model,
        sessionId: customer.sessionId,
        content: question(s.random, o.promptTokens),
        maxTokens: o.replyTokens,
        stream: o.stream,
        ignoreEos: o.ignoreEos,
        timeoutMs: o.timeoutMs,
        signal,
        dueAt,
      }).then((outcome) => {
        // A turn cut by Ctrl-C says nothing about the server.
        if (!signal.aborted) outcomes.push(outcome);
        s.customers.answered(customer, performance.now());
        inFlight.delete(turn);
      });
      inFlight.add(turn);
      due += gap();
    }
    // The turns of the step are waited for (each within its timeout); the next step starts from an idle server.
    await Promise.all(inFlight);
  } finally {
    clearInterval(ticker);
  }
  const partial = signal.aborted;
  const seconds = (partial ? Math.min(o.stepMs, performance.now() - started) : o.stepMs) / 1000;
  return summarizeStep(outcomes, rate, seconds, { sloP95Ms: o.sloP95Ms, maxErrorShare: o.maxErrorShare }, partial);
}
