import type { TestContext } from 'node:test';
import { execa } from 'execa';

/**
 * promtool (Debian package `prometheus`) for the format checks. Outside CI a missing promtool skips the
 * test with the reason; in CI (CI=true) it fails, because .ci/run installs it.
 */
export async function requirePromtool(t: TestContext): Promise<string | null> {
  const found = await execa('promtool', ['--version'], { reject: false, timeout: 10_000 });
  if (found.exitCode === 0) return 'promtool';
  const reason = 'promtool is not installed (apt-get install prometheus)';
  if (process.env.CI === 'true') throw new Error(`CI=true but ${reason}`);
  t.skip(reason);
  return null;
}
