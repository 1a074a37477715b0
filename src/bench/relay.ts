import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

// The floor `npm run bench` holds the daemon to (#21): the least a relay in Node does, node:http in front of
// an undici pool of keep-alive connections, the body forwarded as it arrives and the reply streamed back
// chunk by chunk. No auth, no sessions, no audit, no metrics.

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'host', 'content-length']);

export async function startBareRelay(upstream: string): Promise<{ url: string; close: () => Promise<void> }> {
  const pool = new Pool(upstream, { connections: 128, keepAliveTimeout: 60_000 });
  const relay = async (req: IncomingMessage, res: ServerResponse) => {
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) if (typeof value === 'string' && !HOP_BY_HOP.has(name)) headers[name] = value;
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const up = await pool.request({ method: req.method as 'POST', path: req.url!, headers, body: Buffer.concat(chunks) });
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(up.headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
    res.writeHead(up.statusCode, out);
    for await (const chunk of up.body) res.write(chunk);
    res.end();
  };
  const server = createServer({ keepAliveTimeout: 60_000 }, (req, res) => {
    relay(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await pool.close();
    },
  };
}
