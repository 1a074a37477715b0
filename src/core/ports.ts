import { createServer } from 'node:net';

export interface PortProbe {
  free: boolean;
  /** The listen error code when not free: EADDRINUSE (another process), EACCES (privileged port), ... */
  code?: string;
}

/**
 * Whether we could listen on host:port right now, found by trying: bind, then close at once. Races with
 * other processes are possible between this check and the real listen; callers still handle EADDRINUSE.
 */
export function probePort(port: number, host = '127.0.0.1'): Promise<PortProbe> {
  return new Promise((resolve) => {
    const server = createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => resolve({ free: false, code: err.code ?? 'UNKNOWN' }));
    server.listen({ port, host, exclusive: true }, () => {
      server.close(() => resolve({ free: true }));
    });
  });
}

export async function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return (await probePort(port, host)).free;
}
