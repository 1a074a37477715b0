/*
 * Progress of bundle work, as events the CLI renders (bars on a terminal, plain lines, or NDJSON).
 * One part at a time: the image, the model files, verification, installation.
 */

import { EnvironmentError } from '../core/errors.js';

export type BundlePart = 'image' | 'models' | 'verify' | 'load-image' | 'install-models';

export type BundleProgress =
  | { type: 'note'; message: string }
  /** Bytes done within a part; totalBytes is null when not known ahead (an image streamed by dockerd). */
  | { type: 'bytes'; part: BundlePart; label: string; doneBytes: number; totalBytes: number | null }
  | { type: 'part-done'; part: BundlePart; message: string };

export type BundleProgressListener = (event: BundleProgress) => void;

/** Counts bytes of one part and reports them at most every `everyBytes` (and always at the end). */
export function byteCounter(
  onProgress: BundleProgressListener | undefined,
  part: BundlePart,
  label: string,
  totalBytes: number | null,
  everyBytes = 4 * 1024 * 1024,
): { add(bytes: number): void; finish(message: string): void } {
  let done = 0;
  let reported = -Infinity;
  const report = () => {
    reported = done;
    // A total that is an estimate (an image's size before `docker save` adds its tar headers and config)
    // can be passed: past it the total is unknown, never a share over 100%.
    onProgress?.({ type: 'bytes', part, label, doneBytes: done, totalBytes: totalBytes !== null && done > totalBytes ? null : totalBytes });
  };
  report();
  return {
    add(bytes) {
      done += bytes;
      if (done - reported >= everyBytes) report();
    },
    finish(message) {
      totalBytes = done;
      report();
      onProgress?.({ type: 'part-done', part, message });
    },
  };
}

/** Checked between chunks, so Ctrl-C stops a multi-gigabyte copy promptly and the clean-up still runs. */
export function throwIfCancelled(signal: AbortSignal | undefined, what: string): void {
  if (!signal?.aborted) return;
  throw new EnvironmentError(`${what} cancelled`, {
    next: 'Run it again when ready: nothing was left half-written (a bundle file appears only when complete, and a load skips what is already in place).',
  });
}
