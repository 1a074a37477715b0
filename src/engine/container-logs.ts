import { PassThrough, type Writable } from 'node:stream';
import type Docker from 'dockerode';
import { splitLogLines } from './diagnose.js';

// The engine container's log as Docker keeps it: the multiplexed stdout/stderr frames read back as text
// (for readiness and failure reports) or streamed to the CLI with the two streams kept apart.

/** Docker multiplexes stdout/stderr in non-TTY log output: 8-byte header (stream, 0, 0, 0, size BE) + payload. */
export function demuxLogBuffer(buffer: Buffer): string {
  let out = '';
  let offset = 0;
  while (offset + 8 <= buffer.length) {
    const size = buffer.readUInt32BE(offset + 4);
    out += buffer.subarray(offset + 8, offset + 8 + size).toString('utf8');
    offset += 8 + size;
  }
  // Not multiplexed after all (a TTY container): the raw text.
  if (offset === 0 && buffer.length > 0) return buffer.toString('utf8');
  return out;
}

export async function lastContainerLogLines(docker: Docker, id: string, n: number): Promise<string[]> {
  const raw = (await docker.getContainer(id).logs({ stdout: true, stderr: true, tail: n, follow: false })) as unknown as Buffer;
  return splitLogLines(demuxLogBuffer(Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw)))).slice(-n);
}

export interface LogsOptions {
  follow: boolean;
  tail?: number;
  stdout: Writable;
  stderr: Writable;
  signal?: AbortSignal;
}

/** Stream our engine container's logs, stdout and stderr kept apart. Resolves when the stream ends. */
export async function containerLogs(docker: Docker, id: string, options: LogsOptions): Promise<void> {
  const container = docker.getContainer(id);
  const tail = options.tail === undefined ? {} : { tail: options.tail };
  if (!options.follow) {
    const raw = (await container.logs({ stdout: true, stderr: true, ...tail, follow: false })) as unknown as Buffer;
    const buffer = Buffer.isBuffer(raw) ? raw : Buffer.from(String(raw));
    let offset = 0;
    while (offset + 8 <= buffer.length) {
      const size = buffer.readUInt32BE(offset + 4);
      const payload = buffer.subarray(offset + 8, offset + 8 + size);
      (buffer[offset] === 2 ? options.stderr : options.stdout).write(payload);
      offset += 8 + size;
    }
    return;
  }
  const stream = (await container.logs({ stdout: true, stderr: true, ...tail, follow: true })) as unknown as NodeJS.ReadableStream & {
    destroy(): void;
  };
  await new Promise<void>((resolve, reject) => {
    const stop = () => {
      stream.destroy();
      resolve();
    };
    options.signal?.addEventListener('abort', stop, { once: true });
    // Pipe into PassThroughs, so a closed stdout (| head) never ends our process with EPIPE mid-demux.
    const out = new PassThrough();
    const err = new PassThrough();
    out.pipe(options.stdout, { end: false });
    err.pipe(options.stderr, { end: false });
    docker.modem.demuxStream(stream, out, err);
    stream.on('end', () => {
      options.signal?.removeEventListener('abort', stop);
      resolve();
    });
    stream.on('error', (e: Error) => (options.signal?.aborted ? resolve() : reject(e)));
  });
}
