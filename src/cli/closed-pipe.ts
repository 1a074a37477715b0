/**
 * A reader that goes away (`cs-llm models | head -1`) is not an error of ours, but node ends the process with
 * an unhandled EPIPE and its stack trace. The first EPIPE ends the process as SIGTERM does instead: what
 * stops gracefully on it (the daemon, `up`, a pull) does so, and anything else ends quietly; what is still
 * written to that stream is dropped (a destroyed stream emits no more errors).
 */
const watched = new WeakSet<NodeJS.WriteStream>();

export function endOnClosedPipe(stream: NodeJS.WriteStream): void {
  if (watched.has(stream)) return;
  watched.add(stream);
  let closed = false;
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    if (closed) return;
    closed = true;
    stream.destroy();
    process.kill(process.pid, 'SIGTERM');
  });
}
