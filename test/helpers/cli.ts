import { execa, type Result } from 'execa';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MAIN = join(ROOT, 'src', 'cli', 'main.ts');

/**
 * Runs the real CLI from source (through tsx) as a child process, never throwing on a non-zero exit, so
 * tests assert on exit code, stdout and stderr as a user would see them. Pass CS_LLM_HOME in env so the
 * test never touches the real home.
 */
export async function runCli(
  args: string[],
  options: { env?: Record<string, string | undefined>; input?: string; timeoutMs?: number; cwd?: string } = {},
): Promise<Result> {
  return execa(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: '1', ...options.env },
    input: options.input,
    reject: false,
    timeout: options.timeoutMs ?? 60_000,
  });
}
