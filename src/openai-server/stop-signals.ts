/*
 * The stop signals of an engine process (the simulator's and the CPU engine's main.ts): SIGTERM (docker stop,
 * cs-llm down), SIGINT (Ctrl-C) and SIGHUP (the terminal went away). The listeners stay for the whole run
 * (process.on, not once): node-llama-cpp loads signal-exit 3, whose listener re-raises a signal when it is the
 * only one left, and the process would die mid-drain (docs/cpu.md, "Stop").
 */

export const STOP_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
export type StopSignal = (typeof STOP_SIGNALS)[number];

/**
 * Resolves with the first stop signal; install it before anything that may register its own signal
 * listeners. Each later one calls onRepeat (a second Ctrl-C: stop waiting).
 */
export function stopSignals(onRepeat: (signal: StopSignal) => void): Promise<StopSignal> {
  return new Promise((resolve) => {
    let first: StopSignal | undefined;
    for (const signal of STOP_SIGNALS) {
      process.on(signal, () => {
        if (first === undefined) {
          first = signal;
          resolve(signal);
        } else onRepeat(signal);
      });
    }
  });
}
