import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cpuRuntimeDir } from '../../src/cpu/runtime.js';

/** The tiny models shipped in models/ (copied from the project's shared test models). */
export const MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));
export const TINY_MEMORY = join(MODELS_DIR, 'tiny-memory.gguf');
export const TINY_CHAT = join(MODELS_DIR, 'tiny-chat.gguf');

/**
 * Tests that run llama.cpp call this first. Without the engine's runtime (engines/cpu/node_modules) they
 * skip outside CI with the install command, and fail in CI, where .ci/run installs it.
 */
export function requireCpuRuntime(t: TestContext): boolean {
  const dir = cpuRuntimeDir();
  if (existsSync(join(dir, 'node_modules', 'node-llama-cpp', 'package.json'))) return true;
  const reason = `the CPU engine runtime is not installed in ${dir}; run npm run setup:cpu`;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`);
  t.skip(reason);
  return false;
}
