// The tally series a finished request updates on /metrics (src/daemon/metrics.ts), found by its route, then
// its method and status, without building a key string per request (#21).
import type { CounterSeries, HistogramSeries, TallyCounter, TallyHistogram } from '../metrics/tally.js';
import type { RequestRecord } from './observers.js';

/** A route's series: requests by method, then status; durations of its plain and streamed requests. */
interface RouteSeries {
  requests: Map<string, Map<number, CounterSeries>>;
  duration: [HistogramSeries | null, HistogramSeries | null];
}

/**
 * Each series is made on its first observation, so /metrics lists them in the order they came, as prom-client
 * did. Labels: cs_llm_http_requests_total{route, method, status}, the duration's {route, stream}.
 */
export class RequestSeries {
  private readonly byRoute = new Map<string, RouteSeries>();

  constructor(
    private readonly requestCounter: TallyCounter,
    private readonly durationHistogram: TallyHistogram,
  ) {}

  private route(r: RequestRecord): RouteSeries {
    let s = this.byRoute.get(r.route);
    if (s === undefined) {
      s = { requests: new Map(), duration: [null, null] };
      this.byRoute.set(r.route, s);
    }
    return s;
  }

  requests(r: RequestRecord): CounterSeries {
    const s = this.route(r);
    let byStatus = s.requests.get(r.method);
    if (byStatus === undefined) s.requests.set(r.method, (byStatus = new Map()));
    let c = byStatus.get(r.status);
    if (c === undefined) {
      const { route, method } = r;
      const status = String(r.status);
      c = this.requestCounter.series(`${route}\u0000${method}\u0000${status}`, () => ({ route, method, status }));
      byStatus.set(r.status, c);
    }
    return c;
  }

  duration(r: RequestRecord): HistogramSeries {
    const s = this.route(r);
    const i = r.stream ? 1 : 0;
    let h = s.duration[i];
    if (h === null) {
      const { route } = r;
      const stream = r.stream ? 'true' : 'false';
      h = s.duration[i] = this.durationHistogram.series(`${route}\u0000${stream}`, () => ({ route, stream }));
    }
    return h;
  }
}
