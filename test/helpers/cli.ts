import { execa, type Result } from 'execa';
import { readdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

let distFresh: boolean | undefined;

/** Every source file has its compiled file in dist/, written after the source was last changed. */
export function distIsFresh(): boolean {
  const from = process.env.CS_LLM_TEST_ENTRY;
  if (from === 'src' || from === 'dist') return from === 'dist';
  const fresh = (dir: string): boolean =>
    readdirSync(join(ROOT, 'src', dir), { withFileTypes: true }).every((entry) => {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) return fresh(path);
      if (!/\.tsx?$/.test(entry.name)) return true;
      const built = statSync(join(ROOT, 'dist', path.replace(/\.tsx?$/, '.js')), { throwIfNoEntry: false });
      return built !== undefined && built.mtimeMs >= statSync(join(ROOT, 'src', path)).mtimeMs;
    });
  distFresh ??= fresh('.');
  return distFresh;
}

/**
 * The node arguments that run one of the package's entry points (cli/main, sim/main, cpu/main): the compiled
 * file in dist/ when dist/ is up to date with every source file (CI builds before it tests), else the source
 * through tsx, so a test never runs stale code. From dist/ a CLI run takes about half the CPU (no TypeScript
 * loader). CS_LLM_TEST_ENTRY=src or =dist decides instead.
 */
export function entryArgs(entry: 'cli/main' | 'sim/main' | 'cpu/main'): string[] {
  return distIsFresh() ? [join(ROOT, 'dist', `${entry}.js`)] : ['--import', 'tsx', join(ROOT, 'src', `${entry}.ts`)];
}

/**
 * Runs the real CLI as a child process (see entryArgs), never throwing on a non-zero exit, so tests assert
 * on exit code, stdout and stderr as a user would see them. Pass CS_LLM_HOME in env so the test never
 * touches the real home.
 */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<Result> {
  return execa(process.execPath, [...entryArgs('cli/main'), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: '1', ...options.env },
    input: options.input,
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
  });
}
