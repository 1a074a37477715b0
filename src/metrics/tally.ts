/*
 * Counters and histograms for what the daemon counts on every request, kept as plain numbers per label set
 * and read by prom-client's Registry when /metrics is scraped. prom-client's inc() and observe() check the
 * label object and hash it into a string on every call: five of them per request were 2.5% of the daemon's
 * CPU at 50 connections (#21). Here a caller looks a series up once (series() per label set, kept by the
 * caller) and an update is an addition. The Registry gets the same values prom-client's Counter and
 * Histogram give it (get() / getForPromString()), in the same order, so /metrics reads as before.
 */

import type { Registry } from './prom-client.js';

type Labels = Record<string, string>;

interface MetricValue {
  labels: Labels | { le: number | string };
  value: number;
  metricName?: string;
  sharedLabels?: Labels;
}

interface MetricData {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: MetricValue[];
  aggregator: 'sum';
}

/** What Registry.metrics() asks of a registered metric. */
abstract class TallyMetric<S extends { readonly labels: Labels }> {
  readonly aggregator = 'sum';
  abstract readonly type: 'counter' | 'histogram';
  private readonly byKey = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    registry: Registry,
  ) {
    registry.registerMetric(this as unknown as Parameters<Registry['registerMetric']>[0]);
  }

  protected abstract create(labels: Labels): S;

  /** The series of one label set, made (at zero) on first use; `key` names the set, `labels` gives it. */
  series(key: string, labels: () => Labels): S {
    let s = this.byKey.get(key);
    if (s === undefined) {
      s = this.create(labels());
      this.byKey.set(key, s);
    }
    return s;
  }

  protected all(): IterableIterator<S> {
    return this.byKey.values();
  }

  abstract getForPromString(): Promise<MetricData>;

  /** As prom-client's get(): a histogram's series labels merged into each value's. */
  async get(): Promise<MetricData> {
    const data = await this.getForPromString();
    data.values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    return data;
  }

  reset(): void {
    for (const s of this.all()) this.zero(s);
  }

  protected abstract zero(series: S): void;
}

export class CounterSeries {
  value = 0;
  constructor(readonly labels: Labels) {}

  inc(n = 1): void {
    this.value += n;
  }
}

export class TallyCounter extends TallyMetric<CounterSeries> {
  readonly type = 'counter';

  constructor(options: { name: string; help: string; registry: Registry; labelled?: boolean }) {
    super(options.name, options.help, options.registry);
    // Without labels its one series shows from the start, at zero, as prom-client's does.
    if (options.labelled !== true) this.series('', () => ({}));
  }

  /** The counter without labels. */
  get only(): CounterSeries {
    return this.series('', () => ({}));
  }

  protected create(labels: Labels): CounterSeries {
    return new CounterSeries(labels);
  }

  protected zero(s: CounterSeries): void {
    s.value = 0;
  }

  getForPromString(): Promise<MetricData> {
    const values = [...this.all()].map((s) => ({ value: s.value, labels: s.labels }));
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}

export class HistogramSeries {
  sum = 0;
  count = 0;
  /** Observations per bucket (not cumulative); the last slot counts those above every bound (+Inf only). */
  readonly buckets: Float64Array;

  constructor(
    readonly labels: Labels,
    private readonly bounds: readonly number[],
  ) {
    this.buckets = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    // prom-client refuses (throws) what is not a finite number; nothing is counted then either.
    if (!Number.isFinite(value)) return;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    this.buckets[i]!++;
    this.sum += value;
    this.count++;
  }
}

export class TallyHistogram extends TallyMetric<HistogramSeries> {
  readonly type = 'histogram';
  private readonly bounds: readonly number[];

  /** `buckets`: upper bounds, ascending. */
  constructor(options: { name: string; help: string; registry: Registry; buckets: readonly number[]; labelled?: boolean }) {
    super(options.name, options.help, options.registry);
    this.bounds = options.buckets;
    if (options.labelled !== true) this.series('', () => ({}));
  }

  /** The histogram without labels. */
  get only(): HistogramSeries {
    return this.series('', () => ({}));
  }

  protected create(labels: Labels): HistogramSeries {
    return new HistogramSeries(labels, this.bounds);
  }

  protected zero(s: HistogramSeries): void {
    s.sum = 0;
    s.count = 0;
    s.buckets.fill(0);
  }

  getForPromString(): Promise<MetricData> {
    const bucket = `${this.name}_bucket`;
    const values: MetricValue[] = [];
    for (const s of this.all()) {
      let acc = 0;
      for (let i = 0; i < this.bounds.length; i++) {
        acc += s.buckets[i]!;
        values.push({ labels: { le: this.bounds[i]! }, value: acc, metricName: bucket, sharedLabels: s.labels });
      }
      values.push(
        { labels: { le: '+Inf' }, value: s.count, metricName: bucket, sharedLabels: s.labels },
        { labels: {}, value: s.sum, metricName: `${this.name}_sum`, sharedLabels: s.labels },
        { labels: {}, value: s.count, metricName: `${this.name}_count`, sharedLabels: s.labels },
      );
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator });
  }
}
