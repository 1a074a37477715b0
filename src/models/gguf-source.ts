/*
 * Where a catalog GGUF is downloaded from, pure. Hugging Face serves a repository file at
 * `<endpoint>/<owner>/<name>/resolve/<revision>/<file>` (a redirect to its CDN); a mirror answers the same
 * paths, and Hugging Face's own tools take the mirror from the HF_ENDPOINT environment variable. cs-llm
 * takes it from its config (engine.hfEndpoint, or CS_LLM_ENGINE_HF_ENDPOINT), else HF_ENDPOINT, else
 * huggingface.co. An entry's own `gguf.url` wins over all of them.
 */

import { join } from 'node:path';
import { UsageError } from '../core/errors.js';
import type { ModelEntry } from './schema.js';

export const DEFAULT_HF_ENDPOINT = 'https://huggingface.co';
/** The revision downloaded: the sha256 in the catalog pins the bytes, whatever the branch holds. */
export const HF_REVISION = 'main';

export interface ResolvedEndpoint {
  endpoint: string;
  from: 'config engine.hfEndpoint' | 'HF_ENDPOINT' | 'default';
}

export function resolveHfEndpoint(configured: string | undefined, env: NodeJS.ProcessEnv): ResolvedEndpoint {
  const pick: ResolvedEndpoint = configured
    ? { endpoint: configured, from: 'config engine.hfEndpoint' }
    : env.HF_ENDPOINT
      ? { endpoint: env.HF_ENDPOINT, from: 'HF_ENDPOINT' }
      : { endpoint: DEFAULT_HF_ENDPOINT, from: 'default' };
  let url: URL;
  try {
    url = new URL(pick.endpoint);
  } catch {
    url = new URL('invalid:');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new UsageError(`${pick.from} "${pick.endpoint}" is not an http(s) URL`, {
      next: `Set it to the hub or its mirror, e.g. ${DEFAULT_HF_ENDPOINT} or https://hf-mirror.example.com, or unset it for the default.`,
    });
  }
  return { endpoint: pick.endpoint.replace(/\/+$/, ''), from: pick.from };
}

/** The URL of a catalog GGUF, or null when the entry says nowhere to get it from. */
export function ggufDownloadUrl(gguf: NonNullable<ModelEntry['gguf']>, endpoint: string): string | null {
  if (gguf.url) return gguf.url;
  if (!gguf.hfRepo) return null;
  return `${endpoint}/${gguf.hfRepo}/resolve/${HF_REVISION}/${encodeURIComponent(gguf.file)}`;
}

export function formatFileSize(bytes: number): string {
  const GiB = 1024 ** 3;
  const MiB = 1024 ** 2;
  const short = bytes >= GiB ? `${(bytes / GiB).toFixed(1)} GiB` : `${(bytes / MiB).toFixed(1)} MiB`;
  return `${short}, ${bytes} bytes`;
}

/**
 * The next step when a catalog GGUF is not on this host: the command that fetches it, and what to fetch by
 * hand (URL, folder, size, sha256) where the command cannot run (no network on that box).
 */
export function ggufFetchHint(model: Pick<ModelEntry, 'id' | 'gguf'>, options: { dir: string; endpoint: string }): string {
  const gguf = model.gguf;
  if (!gguf) return `Pass --model /path/to/model.gguf (${model.id} has no GGUF file in the catalog).`;
  const url = ggufDownloadUrl(gguf, options.endpoint);
  const facts = [gguf.sizeBytes !== undefined ? formatFileSize(gguf.sizeBytes) : null, gguf.sha256 ? `sha256 ${gguf.sha256}` : null]
    .filter(Boolean)
    .join(', ');
  const where = join(options.dir, gguf.file);
  if (url && gguf.sha256) {
    return `Run cs-llm models pull ${model.id} (it downloads ${url}${facts ? ` (${facts})` : ''} to ${where} and checks it), or on a machine without that access put the file from that URL in ${options.dir}/ yourself; or pass --model /path/to/model.gguf.`;
  }
  if (url) {
    return `Download ${url} into ${options.dir}/ (as ${gguf.file}${facts ? `; ${facts}` : ''}), or pass --model /path/to/model.gguf. cs-llm models pull needs a sha256 in the catalog entry to check the file.`;
  }
  return `Put ${gguf.file}${facts ? ` (${facts})` : ''} into ${options.dir}/, or pass --model /path/to/model.gguf; add gguf.hfRepo or gguf.url to the catalog entry so cs-llm models pull can fetch it.`;
}
