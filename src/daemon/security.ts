/*
 * Who may talk to the daemon: the Host header allowlist (a page on another site that rebinds its DNS name
 * to 127.0.0.1 still sends its own name as Host: CVE-2024-28224 reached a loopback-bound Ollama this way)
 * and API keys. Pure functions except allowedHostsFor, which reads the machine's addresses for a wildcard bind.
 */

import { networkInterfaces } from 'node:os';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1', '[::1]'];

export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === 'localhost' || h === '::1' || h === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]';
}

/** The host name in a Host header, lower-cased, without the port; IPv6 literals keep their brackets. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) {
    const close = h.indexOf(']');
    return close > 0 ? h.slice(0, close + 1) : h;
  }
  const colon = h.indexOf(':');
  return colon >= 0 ? h.slice(0, colon) : h;
}

export function allowedHostsFor(boundHost: string, extra: readonly string[]): Set<string> {
  const allowed = new Set<string>(LOOPBACK_NAMES);
  const add = (h: string) => {
    const name = hostName(h.includes(':') && !h.startsWith('[') && h.split(':').length > 2 ? `[${h}]` : h);
    allowed.add(name);
  };
  if (isWildcardHost(boundHost)) {
    // Bound to every interface: each of the machine's own addresses is a legitimate Host.
    for (const list of Object.values(networkInterfaces())) {
      for (const addr of list ?? []) add(addr.address);
    }
  } else {
    add(boundHost);
  }
  for (const h of extra) add(h);
  return allowed;
}

export function hostAllowed(header: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (!header) return false;
  return allowed.has(hostName(header));
}

/**
 * A browser page on another site can still send simple requests straight to http://localhost:PORT (no
 * rebinding needed). Browsers name the page's origin in an Origin header: its scheme, host and port must be
 * the daemon's own. The host must be an allowed one, the port the one the request came in on (its Host
 * header's), and the scheme http (the daemon speaks plain http; https only for a non-loopback name, i.e. a
 * TLS proxy in front of it). A page on another port of localhost is another site. Clients that are not
 * browsers send no Origin.
 */
export function originAllowed(origin: string | undefined, host: string | undefined, allowed: ReadonlySet<string>): boolean {
  if (origin === undefined) return true;
  if (host === undefined) return false;
  let page: URL;
  let self: URL;
  try {
    page = new URL(origin);
    self = new URL(`${page.protocol}//${host}`);
  } catch {
    return false;
  }
  if (page.protocol !== 'http:' && !(page.protocol === 'https:' && !isLoopbackHost(page.hostname))) return false;
  const port = (u: URL) => u.port || (u.protocol === 'https:' ? '443' : '80');
  return allowed.has(hostName(page.host)) && port(page) === port(self);
}

/** The token of an `Authorization: Bearer <token>` header, or null. */
export function bearerToken(header: string | undefined): string | null {
  if (!header) return null;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match ? match[1]! : null;
}

/** Session ids: 1-128 characters of letters, digits and . _ : - (safe in logs, URLs and file names). */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
