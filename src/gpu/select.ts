import { UsageError } from '../core/errors.js';
import type { GpuInfo } from './parse.js';

/**
 * Which GPUs a command uses: "all", "none", or a comma-separated list of indexes or UUIDs ("0,1",
 * "GPU-5b6d..."), the same selector as `--gpus` on `up` and `models`.
 */
export function selectGpus(gpus: GpuInfo[], selector: string): GpuInfo[] {
  const sel = selector.trim();
  if (sel === '' || sel === 'all') return gpus;
  if (sel === 'none') return [];
  const chosen: GpuInfo[] = [];
  for (const part of sel
    .split(',')
    .map((p) => p.trim())
    .filter(Boolean)) {
    const gpu = /^\d+$/.test(part) ? gpus.find((g) => g.index === Number(part)) : gpus.find((g) => g.uuid === part);
    if (!gpu) {
      const known = gpus.length ? gpus.map((g) => `${g.index}${g.uuid ? ` (${g.uuid})` : ''}`).join(', ') : 'none detected';
      throw new UsageError(`--gpus ${selector}: there is no GPU "${part}"; GPUs here: ${known}`, {
        next: 'Use --gpus all, --gpus none, or indexes from cs-llm gpu (e.g. --gpus 0,1).',
      });
    }
    if (!chosen.includes(gpu)) chosen.push(gpu);
  }
  return chosen;
}

/** The indexes a selector names, for planning with cards that are not in this box (models --vram). */
export function selectorCount(selector: string): number {
  const sel = selector.trim();
  if (sel === '' || sel === 'all') return 1;
  if (sel === 'none') return 0;
  return sel.split(',').filter((p) => p.trim() !== '').length;
}
