/*
 * Scrapes the daemon's /metrics every interval (one scrape at a time, each with a timeout) and hands each
 * new DashboardState to onState. A daemon that goes away is a state ("unreachable since ..."), never an
 * exception: the poller keeps trying at the same pace until stopped.
 */

import { parsePrometheusText, type ParsedMetrics } from '../metrics/prom-text.js';
import { applyFailure, applyScrape, initialState, type DashboardState } from './state.js';

export interface PollerOptions {
  /** The daemon's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  intervalMs: number;
  /** Sent as Authorization: Bearer; never shown. */
  apiKey?: string | undefined;
  /** Per scrape (default: the interval, at least 1 s and at most 5 s; the first scrape 5 s). */
  timeoutMs?: number;
  onState: (state: DashboardState) => void;
  /** Injected for tests. */
  fetchMetrics?: (url: string, headers: Record<string, string>, timeoutMs: number) => Promise<ParsedMetrics>;
  now?: () => number;
}

export interface Poller {
  /** The latest state. */
  state(): DashboardState;
  /** Scrape now (the first scrape happens on start). */
  poll(): Promise<DashboardState>;
  stop(): void;
}

export class ScrapeError extends Error {}

async function fetchDaemonMetrics(url: string, headers: Record<string, string>, timeoutMs: number): Promise<ParsedMetrics> {
  let res: Response;
  try {
    res = await fetch(`${url}/metrics`, { headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError') throw new ScrapeError(`no answer within ${timeoutMs} ms`);
    throw new ScrapeError(`${e.cause?.code ?? e.cause?.message ?? e.message} (${url})`);
  }
  const text = await res.text();
  if (res.status === 401) throw new ScrapeError('the daemon wants an API key: pass --api-key or set CS_LLM_API_KEY');
  if (res.status === 403)
    throw new ScrapeError('/metrics needs an admin key: pass one made with cs-llm keys create NAME --admin (--api-key or CS_LLM_API_KEY)');
  if (res.status !== 200) throw new ScrapeError(`/metrics answered ${res.status}`);
  try {
    return parsePrometheusText(text);
  } catch (err) {
    throw new ScrapeError(`/metrics did not answer Prometheus text: ${(err as Error).message}`);
  }
}

export function daemonBaseUrl(url: string): string {
  return url.replace(/\/+$/, '').replace(/\/(v1|metrics)$/, '');
}

const FIRST_SCRAPE_TIMEOUT_MS = 5000;

export function startPoller(options: PollerOptions): Poller {
  const url = daemonBaseUrl(options.url);
  const now = options.now ?? Date.now;
  // At least 1 s even at a fast pace: a cold process or a busy machine takes a few hundred ms for the first
  // scrape, and a daemon that is only slow is not "unreachable". One scrape at a time, so a slow one delays
  // the next instead of piling up.
  const timeoutMs = options.timeoutMs ?? Math.min(Math.max(options.intervalMs, 1000), 5000);
  const firstTimeoutMs = options.timeoutMs ?? Math.max(timeoutMs, FIRST_SCRAPE_TIMEOUT_MS);
  const headers: Record<string, string> = options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {};
  const fetchMetrics = options.fetchMetrics ?? fetchDaemonMetrics;
  let state = initialState(url, options.intervalMs);
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  let running: Promise<DashboardState> | null = null;

  const poll = (): Promise<DashboardState> => {
    running ??= (async () => {
      try {
        // The first scrape of a cold process on a busy machine can take seconds (module loading, the first
        // connection): the first scrape gets 5 s before the daemon is called unreachable.
        const metrics = await fetchMetrics(url, headers, state.reachable === null ? firstTimeoutMs : timeoutMs);
        state = applyScrape(state, metrics, now());
      } catch (err) {
        state = applyFailure(state, (err as Error).message, now());
      }
      if (!stopped) options.onState(state);
      return state;
    })().finally(() => {
      running = null;
    });
    return running;
  };

  const loop = () => {
    if (stopped) return;
    const started = now();
    void poll().then(() => {
      if (stopped) return;
      timer = setTimeout(loop, Math.max(0, options.intervalMs - (now() - started)));
    });
  };
  loop();

  return {
    state: () => state,
    poll,
    stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}
