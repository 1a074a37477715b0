import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { deepMerge, loadConfig, type Config } from '../../src/core/config.js';
import type { Logger } from '../../src/core/log.js';
import { resolvePaths, type Paths } from '../../src/core/paths.js';
import { readDaemonState, type DaemonState } from '../../src/daemon/lifecycle.js';
import { startDaemon, type Daemon } from '../../src/daemon/server.js';
import { startSimulator } from '../../src/sim/server.js';
import { execa, type ResultPromise } from 'execa';
import { entryArgs, ROOT, runCli } from '../helpers/cli.js';

type SimOptions = Parameters<typeof startSimulator>[0];

export interface Harness {
  home: string;
  config: Config;
  paths: Paths;
  sim: Awaited<ReturnType<typeof startSimulator>>;
  daemon: Daemon;
  /** The real openai client, pointed at the daemon. */
  client(options?: { sessionId?: string; apiKey?: string; profile?: string }): OpenAI;
}

/**
 * The simulator (zero delay unless asked) behind a daemon on an ephemeral port with its own CS_LLM_HOME, both
 * closed after the test.
 */
export async function startHarness(
  t: { after(fn: () => Promise<void> | void): void },
  options: {
    sim?: SimOptions;
    config?: Record<string, unknown>;
    now?: () => number;
    /** The daemon's log (default: the debug logger, silent unless DEBUG asks). */
    log?: Logger;
    beforeStart?: (paths: Paths, config: Config) => void | Promise<void>;
  } = {},
): Promise<Harness> {
  const home = mkdtempSync(join(tmpdir(), 'cs-llm-daemon-'));
  const sim = await startSimulator({ port: 0, ...options.sim });
  t.after(() => sim.close());
  const { config, paths } = loadConfig({
    env: { CS_LLM_HOME: home },
    flags: deepMerge({ daemon: { upstream: sim.url } }, options.config ?? {}),
  });
  await options.beforeStart?.(paths, config);
  const daemon = await startDaemon({
    config,
    paths,
    port: 0,
    ...(options.now ? { now: options.now } : {}),
    ...(options.log ? { log: options.log } : {}),
  });
  t.after(() => daemon.close('test over'));
  return {
    home,
    config,
    paths,
    sim,
    daemon,
    client: ({ sessionId, apiKey, profile } = {}) =>
      new OpenAI({
        baseURL: `${daemon.url}/v1`,
        apiKey: apiKey ?? 'unused',
        maxRetries: 0,
        timeout: 30_000,
        defaultHeaders: {
          ...(sessionId ? { 'X-Session-Id': sessionId } : {}),
          ...(profile ? { 'X-Profile': profile } : {}),
        },
      }),
  };
}

export function text(completion: OpenAI.Chat.Completions.ChatCompletion): string {
  return completion.choices[0]?.message.content ?? '';
}

/** runCli with stdout and stderr as strings (execa's Result types them loosely). */
export async function cli(
  args: string[],
  options: Parameters<typeof runCli>[1] = {},
): Promise<{ exitCode: number | undefined; stdout: string; stderr: string }> {
  const result = await runCli(args, options);
  return { exitCode: result.exitCode, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/**
 * `cs-llm daemon run` as its own process (the way systemd and `daemon start` run it), returned once it wrote
 * its state file (it listens then). Killed after the test. `home`: its CS_LLM_HOME (default: a new one).
 */
export async function runDaemon(
  t: { after(fn: () => void): void },
  upstream: string,
  options: { home?: string; env?: Record<string, string>; args?: string[] } = {},
): Promise<{ child: ResultPromise; paths: Paths; state: DaemonState; env: Record<string, string> }> {
  const dir = options.home ?? mkdtempSync(join(tmpdir(), 'cs-llm-daemon-main-'));
  const env = { CS_LLM_HOME: dir, ...options.env };
  const child = execa(
    process.execPath,
    [...entryArgs('cli/main'), 'daemon', 'run', '--port', '0', '--upstream', upstream, ...(options.args ?? [])],
    {
      cwd: ROOT,
      env: { ...env, NO_COLOR: '1' },
      reject: false,
    },
  );
  t.after(() => {
    child.kill('SIGKILL');
  });
  const paths = resolvePaths(env);
  let state = readDaemonState(paths);
  while (!state) {
    assert.equal(child.exitCode, null, 'the daemon exited before it listened');
    await new Promise((r) => setTimeout(r, 50));
    state = readDaemonState(paths);
  }
  return { child, paths, state, env };
}
