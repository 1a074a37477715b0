import { createServer } from 'node:net';

/** A port that was free on 127.0.0.1 a moment ago (the OS picked it); tests bind to it right away. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
