import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, EnvironmentError } from '../core/errors.js';

/** Listens on host:port; the usual bind failures become errors that name the fix. */
export function listen(server: Server, host: string, port: number): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      if (err.code === 'EADDRINUSE') {
        reject(
          new EnvironmentError(`port ${port} on ${host} is already in use`, {
            next: `Stop what uses it (cs-llm daemon status; ss -ltnp | grep :${port}), or pick another port with --port.`,
          }),
        );
      } else if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND') {
        reject(
          new ConfigError(`cannot bind ${host}: no such address on this machine`, {
            next: 'Use --host 127.0.0.1 or an address of this machine.',
          }),
        );
      } else if (err.code === 'EACCES') {
        reject(
          new EnvironmentError(`not allowed to bind ${host}:${port}`, {
            next: 'Use a port above 1023, or run with the needed privileges.',
          }),
        );
      } else reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}
