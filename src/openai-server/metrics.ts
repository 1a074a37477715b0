/*
 * The engines' /metrics (the simulator's and the CPU engine's): Prometheus text with vLLM's metric names, label model_name, and numbers
 * written the way vLLM's Python client writes them ("3.0"), so parsers written against vLLM work here.
 */

// vLLM's bucket boundaries (v0.6+), so dashboards built for vLLM show the same shape.
const TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
const E2E_BUCKETS = [
  0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;
  constructor(readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0);
  }
  observe(value: number): void {
    this.sum += value;
    this.count += 1;
    this.buckets.forEach((le, i) => {
      if (value <= le) this.counts[i]! += 1;
    });
  }
}

export interface GaugeValues {
  running: number;
  waiting: number;
  /** 0..1 */
  kvCacheUsage: number;
}

/** vLLM's engine-level reasons: a tool call finishes as "stop" there. */
export type FinishedReason = 'stop' | 'length' | 'abort';

export class VllmMetrics {
  promptTokens = 0;
  generationTokens = 0;
  readonly finished: Record<FinishedReason, number> = { stop: 0, length: 0, abort: 0 };
  private readonly ttft = new Histogram(TTFT_BUCKETS);
  private readonly e2e = new Histogram(E2E_BUCKETS);
  /** Labels of vllm:cache_config_info (vLLM's CacheConfig, e.g. num_gpu_blocks); not rendered when unset. */
  cacheConfig: Record<string, string> | undefined;

  constructor(private readonly modelName: string) {}

  observeTimeToFirstToken(seconds: number): void {
    this.ttft.observe(seconds);
  }

  observeEndToEnd(seconds: number): void {
    this.e2e.observe(seconds);
  }

  render(gauges: GaugeValues): string {
    const label = `model_name="${escapeLabel(this.modelName)}"`;
    const lines: string[] = [];
    const gauge = (name: string, help: string, value: number) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, `${name}{${label}} ${num(value)}`);
    };
    gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', gauges.running);
    gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', gauges.waiting);
    gauge('vllm:gpu_cache_usage_perc', 'GPU KV-cache usage. 1 means 100 percent usage.', gauges.kvCacheUsage);
    gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', gauges.kvCacheUsage);
    if (this.cacheConfig) {
      const info = Object.entries(this.cacheConfig)
        .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
        .join(',');
      lines.push('# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig', '# TYPE vllm:cache_config_info gauge');
      lines.push(`vllm:cache_config_info{${info}} 1.0`);
    }

    const counter = (name: string, help: string, samples: Array<[string, number]>) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [labels, value] of samples) lines.push(`${name}_total{${labels}} ${num(value)}`);
    };
    counter('vllm:prompt_tokens', 'Number of prefill tokens processed.', [[label, this.promptTokens]]);
    counter('vllm:generation_tokens', 'Number of generation tokens processed.', [[label, this.generationTokens]]);
    counter(
      'vllm:request_success',
      'Count of successfully processed requests.',
      (Object.keys(this.finished) as FinishedReason[]).map((reason) => [`finished_reason="${reason}",${label}`, this.finished[reason]]),
    );

    const histogram = (name: string, help: string, h: Histogram) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
      h.buckets.forEach((le, i) => lines.push(`${name}_bucket{le="${num(le)}",${label}} ${num(h.counts[i]!)}`));
      lines.push(`${name}_bucket{le="+Inf",${label}} ${num(h.count)}`);
      lines.push(`${name}_count{${label}} ${num(h.count)}`);
      lines.push(`${name}_sum{${label}} ${num(h.sum)}`);
    };
    histogram('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', this.ttft);
    histogram('vllm:e2e_request_latency_seconds', 'Histogram of end to end request latency in seconds.', this.e2e);
    return `${lines.join('\n')}\n`;
  }
}

function num(value: number): string {
  return Number.isInteger(value) ? `${value}.0` : String(value);
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
