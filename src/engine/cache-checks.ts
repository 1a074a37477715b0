import { existsSync, statSync, type Stats } from 'node:fs';
import { basename, join } from 'node:path';
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

/**
 * vLLM runs as the operator (runAs, uid:gid) with every capability dropped, so even as root it writes only
 * where the permission bits let it. A cache left root-owned by an engine that once ran as root is refused
 * here, with the chown that repairs it, instead of failing with a PermissionError deep inside a download.
 */
export function checkCacheWritable(hfCacheDir: string, repo: string, runAs: string): void {
  const [uid, gid] = runAs.split(':').map(Number) as [number, number];
  const repoFolder = hfRepoCacheDir(hfCacheDir, repo);
  const dirs = [
    hfCacheDir,
    join(hfCacheDir, 'hub'),
    repoFolder,
    ...['blobs', 'snapshots', 'refs'].map((d) => join(repoFolder, d)),
    join(hfCacheDir, 'hub', '.locks'),
    join(hfCacheDir, 'hub', '.locks', basename(repoFolder)),
  ];
  for (const dir of dirs) {
    let stats: Stats;
    try {
      stats = statSync(dir);
    } catch {
      continue; // not there yet: vLLM creates it, inside a folder checked above
    }
    const writable =
      (stats.uid === uid && (stats.mode & 0o300) === 0o300) ||
      (stats.uid !== uid && stats.gid === gid && (stats.mode & 0o030) === 0o030) ||
      (stats.uid !== uid && stats.gid !== gid && (stats.mode & 0o003) === 0o003);
    if (!writable) {
      throw new EnvironmentError(
        `the engine runs as ${runAs} and cannot write ${dir} in the Hugging Face cache (owner ${stats.uid}:${stats.gid}, mode ${(stats.mode & 0o777).toString(8)})`,
        {
          next: `Give the cache to the user who runs cs-llm up: sudo chown -R ${uid}:${gid} ${hfCacheDir} (an engine that ran as root leaves it root-owned), or point engine.hfCacheDir at a folder of yours.`,
        },
      );
    }
  }
}
