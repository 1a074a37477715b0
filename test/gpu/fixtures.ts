import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/cli.js';

/** The fake nvidia-smi scenarios in test/fixtures/nvidia-smi (see its README). */
export const NVIDIA_SMI_FIXTURES = join(ROOT, 'test', 'fixtures', 'nvidia-smi');

export function scenarioDir(name: string): string {
  return join(NVIDIA_SMI_FIXTURES, name);
}

export function recorded(name: string, file = 'query-gpu.csv'): string {
  return readFileSync(join(scenarioDir(name), file), 'utf8');
}

/** An environment whose PATH finds the scenario's nvidia-smi first, and sh's tools after it. */
export function envWithScenario(name: string): NodeJS.ProcessEnv {
  return { PATH: `${scenarioDir(name)}:/usr/bin:/bin` };
}

/** A PATH with no nvidia-smi at all. */
export const ENV_WITHOUT_NVIDIA_SMI: NodeJS.ProcessEnv = { PATH: '/nonexistent-cs-llm-bin' };
