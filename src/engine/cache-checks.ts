import { existsSync } from 'node:fs';
import { EnvironmentError } from '../core/errors.js';
import { freeDisk } from '../core/disk.js';
import { formatGiB } from '../models/fit.js';
import type { ModelEntry } from '../models/schema.js';
import { hfRepoCacheDir } from './model-files.js';

// What `up` checks of the Hugging Face cache before vLLM starts downloading into it.

/** The Hugging Face cache folder of one repository; defined with the engines' other model-file knowledge. */
export { hfRepoCacheDir };

/** Room on disk for the weights, unless they are (at least partly) in the cache already. */
export async function checkDiskForWeights(hfCacheDir: string, model: Pick<ModelEntry, 'id' | 'hfRepo' | 'weightsBytes'>): Promise<void> {
  if (existsSync(hfRepoCacheDir(hfCacheDir, model.hfRepo ?? model.id))) return;
  const { at, freeBytes: free } = await freeDisk(hfCacheDir);
  if (free === null) return; // cannot tell: the download itself will say
  const needed = model.weightsBytes * 1.05;
  if (free < needed) {
    throw new EnvironmentError(
      `not enough disk for the weights of ${model.id}: they need about ${formatGiB(needed)}, ${formatGiB(free)} are free at ${at}`,
      {
        next: 'Free space there, or point the Hugging Face cache at a larger disk (CS_LLM_ENGINE_HF_CACHE_DIR, or engine.hfCacheDir in the config).',
      },
    );
  }
}
