/*
 * zod, loaded on first use and synchronously (config loading and the chat request check are synchronous):
 * through require, zod's CommonJS build. The daemon loads it only to name what is wrong with a config or a
 * request that the hand-written checks refuse (#21: zod is 13 MiB of RSS and about 30 ms of a start). A
 * process that also imports zod's ES module (the model catalog's commands) then holds both, on that path only.
 */

import { createRequire } from 'node:module';
import type { z as Zod } from 'zod';

let loaded: typeof Zod | undefined;

export function zod(): typeof Zod {
  if (!loaded) {
    // A name other than `require`, so that the CLI's bundler (scripts/bundle-cli.mjs) leaves the call alone.
    const load = createRequire(import.meta.url);
    loaded = (load('zod') as { z: typeof Zod }).z;
  }
  return loaded;
}
