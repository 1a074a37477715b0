import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EnvironmentError } from '../core/errors.js';
import { PACKAGE_ROOT } from '../core/version.js';

// How the simulator and the CPU engine run as local processes (hosts without Docker): their command line from
// this install.

/** How to run the CPU engine from this install as a local process: dist, or the source through tsx in a checkout. */
export function cpuEngineCommand(): string[] {
  const dist = join(PACKAGE_ROOT, 'dist', 'cpu', 'main.js');
  const source = join(PACKAGE_ROOT, 'src', 'cpu', 'main.ts');
  const runningFromSource = fileURLToPath(import.meta.url).endsWith('.ts');
  if (runningFromSource && existsSync(source)) return [process.execPath, '--import', 'tsx', source];
  if (existsSync(dist)) return [process.execPath, dist];
  if (existsSync(source)) return [process.execPath, '--import', 'tsx', source];
  throw new EnvironmentError('the cpu engine is not part of this install (no dist/cpu/main.js)', {
    next: 'Run npm run build in the cs-llm checkout, or reinstall cs-llm.',
  });
}

/** How to run the simulator from this install: the built dist, or the source through tsx in a checkout. */
export function simulatorCommand(): string[] {
  const dist = join(PACKAGE_ROOT, 'dist', 'sim', 'main.js');
  const source = join(PACKAGE_ROOT, 'src', 'sim', 'main.ts');
  const runningFromSource = fileURLToPath(import.meta.url).endsWith('.ts');
  if (runningFromSource && existsSync(source)) return [process.execPath, '--import', 'tsx', source];
  if (existsSync(dist)) return [process.execPath, dist];
  if (existsSync(source)) return [process.execPath, '--import', 'tsx', source];
  throw new EnvironmentError('the simulator is not part of this install (no dist/sim/main.js)', {
    next: 'Run npm run build in the cs-llm checkout, or reinstall cs-llm.',
  });
}
