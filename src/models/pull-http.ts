/*
 * The HTTP side of `cs-llm models pull`: one GET, its redirects followed by hand, and who gets the token.
 * HF_TOKEN goes only to the origin of the configured Hugging Face endpoint (or mirror), and only when that is
 * https: not to an entry's own `gguf.url` elsewhere, not to the storage the hub redirects to, never in clear
 * text. A redirect from https to plain http is refused, since the file (and the sha256 check's only input)
 * would then travel unprotected.
 */

import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { EnvironmentError } from '../core/errors.js';
import { VERSION } from '../core/version.js';

const MAX_REDIRECTS = 10;

/** The origin HF_TOKEN may be sent to: the endpoint's, when it is https; null (nowhere) otherwise. */
export function tokenOrigin(endpoint: string): string | null {
  try {
    const url = new URL(endpoint);
    return url.protocol === 'https:' ? url.origin : null;
  } catch {
    return null;
  }
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Reads and drops a response body that is not wanted (an error page, a redirect). */
export function discard(res: IncomingMessage): void {
  res.resume();
}

/**
 * One GET with node's http client. Not undici (nor fetch, which is undici inside): both 7.30 and Node 20's
 * 6.24 throw an uncatchable AssertionError (`assert(!this.paused)`, nodejs/undici#5360) when a server
 * closes the connection after the body while the reader applies backpressure, which a download to disk
 * does; seen here 16 times in 20 against an HTTP/1.0 server. A fresh connection per request (agent: false);
 * the idle limit covers the wait for headers and every gap in the body.
 */
function getOnce(
  url: string,
  headers: Record<string, string>,
  options: { signal?: AbortSignal; idleTimeoutMs: number; ca?: string | Buffer },
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const req =
      target.protocol === 'https:'
        ? httpsRequest(target, { method: 'GET', headers, signal: options.signal, agent: false, ca: options.ca }, resolve)
        : httpRequest(target, { method: 'GET', headers, signal: options.signal, agent: false }, resolve);
    req.setTimeout(options.idleTimeoutMs, () =>
      req.destroy(new Error(`no bytes from ${target.host} for ${Math.round(options.idleTimeoutMs / 1000)} s`)),
    );
    req.on('error', reject);
    req.end();
  });
}

export interface GetOptions {
  range: number | null;
  token?: string;
  /** tokenOrigin(endpoint): the only origin the token goes to. */
  tokenOrigin: string | null;
  signal?: AbortSignal;
  idleTimeoutMs: number;
  /** Certificates to trust for https instead of the usual ones (tests; the CLI has NODE_EXTRA_CA_CERTS). */
  ca?: string | Buffer;
}

export interface GetResult {
  res: IncomingMessage;
  /** Whether the token went with the request that answered. */
  tokenSent: boolean;
}

/** GET with redirects followed by hand: the Range header goes to every hop, the token only to its origin. */
export async function get(url: string, options: GetOptions): Promise<GetResult> {
  let current = new URL(url);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'user-agent': `cs-llm/${VERSION}`, 'accept-encoding': 'identity' };
    if (options.range !== null) headers.range = `bytes=${options.range}-`;
    const tokenSent = Boolean(options.token) && options.tokenOrigin !== null && current.origin === options.tokenOrigin;
    if (tokenSent) headers.authorization = `Bearer ${options.token}`;
    const res = await getOnce(current.toString(), headers, options);
    const location = header(res.headers, 'location');
    if (![301, 302, 303, 307, 308].includes(res.statusCode ?? 0) || !location) return { res, tokenSent };
    discard(res);
    const next = new URL(location, current);
    if (next.protocol !== 'https:' && next.protocol !== 'http:') {
      throw new EnvironmentError(`${url}: refused a redirect to ${next.protocol} (${next.toString()})`, {
        next: 'Check the endpoint (HF_ENDPOINT or engine.hfEndpoint): a mirror should answer the file or redirect to its storage over https.',
      });
    }
    if (current.protocol === 'https:' && next.protocol === 'http:') {
      throw new EnvironmentError(`${url}: refused a redirect from https to plain http (${next.toString()})`, {
        next:
          'The file would travel unprotected. Ask the mirror to redirect to https, or, on a network you trust, set the endpoint ' +
          '(HF_ENDPOINT or engine.hfEndpoint) to that http mirror directly (then no token is sent).',
      });
    }
    current = next;
  }
  throw new EnvironmentError(`${url}: more than ${MAX_REDIRECTS} redirects`, {
    next: 'Check the endpoint (HF_ENDPOINT or engine.hfEndpoint): a mirror should answer the file or redirect once to its storage.',
  });
}
