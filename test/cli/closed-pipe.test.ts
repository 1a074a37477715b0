// A reader that goes away (`cs-llm models | head -1`) ends the CLI as SIGTERM does, without node's unhandled
// EPIPE and its stack trace (src/cli/closed-pipe.ts). Runs the built CLI (CI builds before it tests).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/cli.js';

const MAIN = join(ROOT, 'dist', 'cli', 'main.js');

/** Runs the CLI with its stdout's reading end closed before it writes; its stderr and how it ended. */
function withClosedStdout(args: string[]): Promise<{ stderr: string; code: number | null; signal: string | null }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  // Closed at once: node takes far longer to start than this takes to run, so the CLI's first write meets it.
  child.stdout.destroy();
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ stderr, code, signal })));
}

test('the CLI ends quietly when its output is no longer read: the build help, a command', async (t) => {
  if (!existsSync(MAIN)) return t.skip('no dist/cli/main.js (npm run build)');
  const runs = await Promise.all([withClosedStdout(['--help']), withClosedStdout(['models', '--json'])]);
  for (const run of runs) {
    assert.doesNotMatch(run.stderr, /EPIPE|Unhandled|\n\s+at /, run.stderr);
    assert.equal(run.signal, 'SIGTERM', `ended by ${run.signal ?? `exit code ${run.code}`}`);
  }
});
