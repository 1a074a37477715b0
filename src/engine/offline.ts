/*
 * `up --offline`: before anything starts, everything the engine needs must already be on this host (the
 * image, and the model's files in its store). Every missing piece is listed at once, with how to bring it
 * over from a connected machine: an offline bundle.
 */

import type Docker from 'dockerode';
import { EnvironmentError } from '../core/errors.js';
import { dirname } from 'node:path';
import { locateGguf, modelStoreFor, readHfSnapshot } from './model-files.js';
import { imageExists } from './pull.js';
import type { EngineKind } from './kinds.js';

export interface OfflineNeeds {
  kind: EngineKind;
  image: string;
  model: { id: string; hfRepo?: string | null; gguf?: { file: string } | null };
  hfCacheDir: string;
  env?: NodeJS.ProcessEnv;
}

/** What is missing, one line each; empty when the engine can start offline. */
export async function missingForOffline(docker: Docker | null, needs: OfflineNeeds): Promise<string[]> {
  const missing: string[] = [];
  if (docker && !(await imageExists(docker, needs.image))) missing.push(`image ${needs.image} is not on this host`);
  const store = modelStoreFor(needs.kind, needs.model);
  if (store.store === 'hf-cache') {
    const { snapshot, problems } = readHfSnapshot(needs.hfCacheDir, store.repo);
    for (const problem of problems) missing.push(`weights: ${problem}`);
    if (snapshot && !snapshot.hasRefMain) {
      missing.push(`weights: ${store.repo}: no refs/main naming snapshot ${snapshot.revision}, so the engine cannot find it offline`);
    }
  }
  if (store.store === 'gguf') {
    const found = locateGguf(store.file, needs.env ?? process.env);
    if (!found.path) missing.push(`weights: ${store.file} is not in ${dirname(found.installPath)}`);
  }
  return missing;
}

/** Throws one error listing everything missing, or returns when the engine can start offline. */
export async function checkOfflineReady(docker: Docker | null, needs: OfflineNeeds): Promise<void> {
  const missing = await missingForOffline(docker, needs);
  if (missing.length === 0) return;
  throw new EnvironmentError(
    `offline mode: ${missing.length === 1 ? 'one thing the engine needs is' : `${missing.length} things the engine needs are`} not on this host`,
    {
      details: missing,
      next:
        `On a connected machine run cs-llm bundle create --model ${needs.model.id} --engine ${needs.kind} ` +
        `(add --image ${needs.image} if it is not the default), copy the file here, run cs-llm bundle load <file>, then cs-llm up --offline again.`,
    },
  );
}
