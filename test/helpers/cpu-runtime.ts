import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/core/config.js';
import { startCpuEngine, type RunningCpuEngine } from '../../src/cpu/server.js';
import { cpuRuntimeDir } from '../../src/cpu/runtime.js';
import { startDaemon, type Daemon } from '../../src/daemon/server.js';

/** The tiny models shipped in models/ (copied from the project's shared test models). */
export const MODELS_DIR = fileURLToPath(new URL('../../models/', import.meta.url));
export const TINY_MEMORY = join(MODELS_DIR, 'tiny-memory.gguf');
export const TINY_CHAT = join(MODELS_DIR, 'tiny-chat.gguf');

/**
 * Tests that run llama.cpp call this first. Without the engine's runtime (engines/cpu/node_modules) they
 * skip outside CI with the install command, and fail in CI, where .ci/run installs it.
 */
export function requireCpuRuntime(t: TestContext): boolean {
  const skip = cpuRuntimeSkip();
  if (skip === false) return true;
  t.skip(skip);
  return false;
}

/** The same check for a whole file, as a test's `skip` option: false when installed, else the reason. */
export function cpuRuntimeSkip(): false | string {
  const dir = cpuRuntimeDir();
  if (existsSync(join(dir, 'node_modules', 'node-llama-cpp', 'package.json'))) return false;
  const reason = `the CPU engine runtime is not installed in ${dir}; run npm run setup:cpu`;
  if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`);
  return reason;
}

export interface EngineWithDaemon {
  engine: RunningCpuEngine;
  daemon: Daemon;
  close(): Promise<void>;
}

/** One engine (1 thread, 512 tokens of context) on a tiny model and a daemon in front of it, with its own CS_LLM_HOME. */
export async function startEngineWithDaemon(modelPath: string): Promise<EngineWithDaemon> {
  const engine = await startCpuEngine({ modelPath, port: 0, threads: 1, ctxSize: 512, log: () => {} });
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-cpu-daemon-'));
  const { config, paths } = loadConfig({ env: { CS_LLM_HOME: home }, flags: { daemon: { upstream: engine.url } } });
  const daemon = await startDaemon({ config, paths, port: 0 });
  return {
    engine,
    daemon,
    async close() {
      await daemon.close('test over');
      await engine.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
}
