/*
 * A small parser for the Prometheus text exposition format (version 0.0.4), enough to read the daemon's own
 * /metrics and vLLM's: samples with labels, HELP/TYPE comments, escaped label values, NaN/+Inf, optional
 * timestamps. Pure: text in, samples out.
 */

export interface Sample {
  /** The sample's name as written, e.g. cs_llm_http_request_duration_seconds_bucket. */
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface ParsedMetrics {
  samples: Sample[];
  /** # TYPE lines: family name -> counter | gauge | histogram | summary | untyped. */
  types: Map<string, string>;
}

function parseValue(raw: string): number {
  if (raw === '+Inf' || raw === 'Inf') return Number.POSITIVE_INFINITY;
  if (raw === '-Inf') return Number.NEGATIVE_INFINITY;
  if (raw === 'NaN') return Number.NaN;
  const n = Number(raw);
  if (raw === '' || Number.isNaN(n)) throw new Error(`not a number: "${raw}"`);
  return n;
}

/** Label block starting after '{' at `start`; returns the labels and the index after '}'. */
function parseLabels(line: string, start: number): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start;
  for (;;) {
    while (line[i] === ' ' || line[i] === ',') i++;
    if (line[i] === '}') return { labels, end: i + 1 };
    const eq = line.indexOf('=', i);
    if (eq < 0) throw new Error('a label without "="');
    const name = line.slice(i, eq).trim();
    i = eq + 1;
    while (line[i] === ' ') i++;
    if (line[i] !== '"') throw new Error(`label ${name} has no quoted value`);
    i++;
    let value = '';
    for (;;) {
      const c = line[i];
      if (c === undefined) throw new Error(`label ${name} value is not closed`);
      if (c === '\\') {
        const next = line[i + 1];
        value += next === 'n' ? '\n' : (next ?? '');
        i += 2;
        continue;
      }
      if (c === '"') {
        i++;
        break;
      }
      value += c;
      i++;
    }
    labels[name] = value;
  }
}

/**
 * Parses exposition text. A malformed line throws an Error naming its line number, so a caller can tell
 * "this is not Prometheus text" (e.g. an HTML error page) from an empty reply.
 */
export function parsePrometheusText(text: string): ParsedMetrics {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^#\s+TYPE\s+(\S+)\s+(\S+)/.exec(line);
      if (m) types.set(m[1]!, m[2]!);
      continue;
    }
    try {
      const brace = line.indexOf('{');
      const space = line.search(/\s/);
      let name: string;
      let labels: Record<string, string> = {};
      let rest: string;
      if (brace >= 0 && (space < 0 || brace < space)) {
        name = line.slice(0, brace);
        const parsed = parseLabels(line, brace + 1);
        labels = parsed.labels;
        rest = line.slice(parsed.end).trim();
      } else {
        if (space < 0) throw new Error('a name without a value');
        name = line.slice(0, space);
        rest = line.slice(space).trim();
      }
      if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(name)) throw new Error(`invalid metric name "${name}"`);
      const value = parseValue(rest.split(/\s+/)[0] ?? '');
      samples.push({ name, labels, value });
    } catch (err) {
      throw new Error(`line ${n + 1} is not Prometheus text: ${(err as Error).message}: ${line.slice(0, 120)}`);
    }
  }
  return { samples, types };
}

function matches(sample: Sample, labels: Record<string, string> | undefined): boolean {
  if (!labels) return true;
  for (const [k, v] of Object.entries(labels)) if (sample.labels[k] !== v) return false;
  return true;
}

/** Samples of one name whose labels include the given ones. */
export function select(metrics: ParsedMetrics, name: string, labels?: Record<string, string>): Sample[] {
  return metrics.samples.filter((s) => s.name === name && matches(s, labels));
}

/** The sum over matching samples (a counter summed over its labels); null when there is none. */
export function sumOf(metrics: ParsedMetrics, name: string, labels?: Record<string, string>): number | null {
  const found = select(metrics, name, labels);
  if (found.length === 0) return null;
  let total = 0;
  for (const s of found) total += s.value;
  return total;
}

/** Histogram buckets: upper bound -> cumulative count, summed over the other labels, sorted by bound. */
export interface Buckets {
  bounds: number[];
  counts: number[];
}

export function bucketsOf(metrics: ParsedMetrics, family: string, labels?: Record<string, string>): Buckets | null {
  const byBound = new Map<number, number>();
  for (const s of select(metrics, `${family}_bucket`, labels)) {
    const le = s.labels.le;
    if (le === undefined) continue;
    const bound = parseValue(le);
    byBound.set(bound, (byBound.get(bound) ?? 0) + s.value);
  }
  if (byBound.size === 0) return null;
  const bounds = [...byBound.keys()].sort((a, b) => a - b);
  return { bounds, counts: bounds.map((b) => byBound.get(b)!) };
}
