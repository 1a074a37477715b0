/**
 * Runs long work that Ctrl-C (or SIGTERM) cancels through its signal; the service then cleans up what it had
 * started (a bundle removes its partial file, a pull keeps its part file for the next run).
 */
export async function cancellable<T>(work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await work(abort.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
