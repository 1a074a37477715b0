/*
 * The live dashboard: a poller feeds states, the Ink app draws them; or, without a terminal, one plain
 * key=value line per interval. Work happens in effects and the poller, never during render.
 */

import { useEffect, useState } from 'react';
import { render, useApp, useInput, useStdout } from 'ink';
import { startPoller, type Poller } from './poller.js';
import { terminalLines } from '../core/terminal-text.js';
import { plainLine } from './format.js';
import type { DashboardState } from './state.js';
import { Dashboard } from './view.js';

export interface RunDashboardOptions {
  url: string;
  intervalMs: number;
  apiKey?: string | undefined;
  /** Draw with Ink (a terminal) or print plain lines. */
  interactive: boolean;
  color: boolean;
  /** Plain mode: stop after this many lines (default: until a signal). */
  count?: number | undefined;
  stdout?: NodeJS.WriteStream;
  stdin?: NodeJS.ReadStream;
}

type Listener = (state: DashboardState) => void;

function App({ subscribe, initial, color }: { subscribe: (fn: Listener) => () => void; initial: DashboardState; color: boolean }) {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const [state, setState] = useState(initial);
  const [columns, setColumns] = useState(stdout.columns ?? 100);
  useEffect(() => subscribe(setState), [subscribe]);
  useEffect(() => {
    const onResize = () => setColumns(stdout.columns ?? 100);
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  useInput((input, key) => {
    if (input === 'q' || input === 'Q' || key.escape || (key.ctrl && input === 'c')) exit();
  });
  return <Dashboard state={state} color={color} columns={columns} now={Date.now()} />;
}

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Resolves when the operator quits (q, Ctrl-C, a signal) or, in plain mode, after `count` lines. */
export async function runDashboard(options: RunDashboardOptions): Promise<void> {
  const stdout = options.stdout ?? process.stdout;
  const listeners = new Set<Listener>();
  let poller: Poller | null = null;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  let lines = 0;

  const onSignal = () => finish();
  for (const signal of SIGNALS) process.on(signal, onSignal);
  try {
    poller = startPoller({
      url: options.url,
      intervalMs: options.intervalMs,
      apiKey: options.apiKey,
      // The one way states reach the screen: names from the engine and the daemon's metrics (model, upstream,
      // GPU names, problems) lose their control characters here.
      onState: (raw) => {
        const state = terminalLines(raw);
        if (options.interactive) {
          for (const listener of listeners) listener(state);
          return;
        }
        stdout.write(`${plainLine(state, Date.now())}\n`);
        lines++;
        if (options.count !== undefined && lines >= options.count) finish();
      },
    });
    if (!options.interactive) {
      await finished;
      return;
    }
    const subscribe = (fn: Listener) => {
      listeners.add(fn);
      fn(terminalLines(poller!.state()));
      return () => {
        listeners.delete(fn);
      };
    };
    const instance = render(<App subscribe={subscribe} initial={terminalLines(poller.state())} color={options.color} />, {
      stdout,
      ...(options.stdin ? { stdin: options.stdin } : {}),
      exitOnCtrlC: false,
      patchConsole: false,
    });
    try {
      await Promise.race([instance.waitUntilExit(), finished]);
    } finally {
      // Restores the terminal (raw mode off, cursor back) on every way out.
      instance.unmount();
      instance.cleanup();
    }
  } finally {
    poller?.stop();
    for (const signal of SIGNALS) process.off(signal, onSignal);
  }
}
