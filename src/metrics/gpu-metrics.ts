/*
 * The GPU gauges of /metrics (nvidia-smi in loop mode, sampled in the background): refresh() copies the
 * latest sample into them at scrape time, never per request.
 */

import { Gauge, type Registry } from './prom-client.js';
import { startGpuSampler, type GpuSample, type GpuSamplerOptions } from '../gpu/sampler.js';

export interface GpuMetrics {
  refresh(): void;
  /** The latest sample of each GPU (empty without sampling): the power that electricityPerKWh prices. */
  current(): GpuSample[];
  close(): Promise<void>;
}

/** @param options false: no sampling (the gauges stay empty). */
export function createGpuMetrics(registry: Registry, options: false | GpuSamplerOptions): GpuMetrics {
  const registers = [registry];
  const labelNames = ['gpu', 'uuid', 'name'];
  const memoryUsed = new Gauge({ name: 'cs_llm_gpu_memory_used_bytes', help: 'GPU memory in use (nvidia-smi).', labelNames, registers });
  const memoryTotal = new Gauge({
    name: 'cs_llm_gpu_memory_total_bytes',
    help: 'GPU memory in total (nvidia-smi).',
    labelNames,
    registers,
  });
  const utilization = new Gauge({
    name: 'cs_llm_gpu_utilization_ratio',
    help: 'GPU busy time over the last sample period, 0 to 1 (nvidia-smi).',
    labelNames,
    registers,
  });
  const temperature = new Gauge({
    name: 'cs_llm_gpu_temperature_celsius',
    help: 'GPU core temperature (nvidia-smi).',
    labelNames,
    registers,
  });
  const power = new Gauge({ name: 'cs_llm_gpu_power_watts', help: 'GPU power draw (nvidia-smi).', labelNames, registers });
  const sampler = options === false ? null : startGpuSampler(options);
  return {
    refresh() {
      for (const g of [memoryUsed, memoryTotal, utilization, temperature, power]) g.reset();
      if (!sampler) return;
      for (const s of sampler.current()) {
        const labels = { gpu: String(s.index), uuid: s.uuid ?? '', name: s.name };
        if (s.memoryUsedBytes !== null) memoryUsed.set(labels, s.memoryUsedBytes);
        if (s.memoryTotalBytes !== null) memoryTotal.set(labels, s.memoryTotalBytes);
        if (s.utilization !== null) utilization.set(labels, s.utilization);
        if (s.temperatureC !== null) temperature.set(labels, s.temperatureC);
        if (s.powerW !== null) power.set(labels, s.powerW);
      }
    },
    current: () => sampler?.current() ?? [],
    async close() {
      await sampler?.stop();
    },
  };
}
