/*
 * The HTTP request a tool call becomes, built from the tool's URL template and the model's arguments. Pure.
 * The model writes the arguments, so they can only fill the template's placeholders and the arguments the
 * schema declares: a value cannot move the request to another host or up the path, and an argument the
 * schema does not name is never sent, at any depth (declared-only.ts).
 */

import type { ToolConfig } from '../../core/config.js';
import { declaredOnly } from './declared-only.js';

export interface ToolRequest {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string | null;
}

/** Arguments that passed the schema but cannot make a safe request; the message names the argument. */
export class ToolArgumentError extends Error {}

const PLACEHOLDER = /\{([A-Za-z0-9_]+)\}/g;
/** scheme://authority: the part of a URL template no placeholder may stand in. */
const ORIGIN_PART = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*/;

/** ${NAME} references in a header value, replaced from the environment; a missing variable is an error. */
export function expandEnv(value: string, env: NodeJS.ProcessEnv): string {
  return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (_, name: string) => {
    const found = env[name];
    if (found === undefined) throw new Error(`environment variable ${name} is not set`);
    return found;
  });
}

function declaredProperties(tool: ToolConfig): Record<string, unknown> {
  const properties = tool.parameters.properties;
  return typeof properties === 'object' && properties !== null && !Array.isArray(properties) ? (properties as Record<string, unknown>) : {};
}

/** Problems with a tool's URL template (so a bad config is refused at start, not at the first call). */
export function urlTemplateProblems(tool: ToolConfig): string[] {
  const template = tool.http.url;
  const originEnd = ORIGIN_PART.exec(template)?.[0].length ?? 0;
  const declared = declaredProperties(tool);
  const problems: string[] = [];
  for (const match of template.matchAll(PLACEHOLDER)) {
    if (match.index! < originEnd)
      problems.push(`http.url: {${match[1]}} may stand in the path or the query only, not in the scheme or host`);
    else if (!Object.hasOwn(declared, match[1]!)) problems.push(`http.url: {${match[1]}} is not a property in parameters.properties`);
  }
  if (problems.length > 0) return problems;
  let parsed: URL;
  try {
    parsed = new URL(template.replace(PLACEHOLDER, 'x'));
  } catch {
    return [`http.url is not a URL: ${template}`];
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') problems.push(`http.url must start with http:// or https://`);
  return problems;
}

/**
 * Whether a placeholder value could name another path: a "." or ".." segment once decoded (some servers
 * decode more than once, and some take "\" for "/"). A value still encoded after four decodings is refused too.
 */
function leavesItsSegment(value: string): boolean {
  let text = value;
  for (let round = 0; round < 5; round++) {
    if (text.split(/[/\\]/).some((segment) => segment === '.' || segment === '..')) return true;
    const decoded = text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (decoded === text) return false;
    text = decoded;
  }
  return true;
}

function placeholderValue(name: string, value: unknown): string {
  if (value === undefined || value === null || value === '')
    throw new ToolArgumentError(`${name}: needed for the tool's URL, must not be empty`);
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  if (leavesItsSegment(text)) throw new ToolArgumentError(`${name}: "." and ".." are not allowed as a value or a path segment`);
  return encodeURIComponent(text);
}

function queryValue(value: unknown): string {
  return typeof value === 'object' && value !== null ? JSON.stringify(value) : String(value);
}

/**
 * The request for one call. {arg} placeholders in the URL take the URL-encoded argument; the other arguments
 * the schema declares go in the query string (GET, DELETE), or all declared ones as the JSON body (POST, PUT,
 * PATCH); undeclared ones are dropped, and so are undeclared names inside declared objects. Throws
 * ToolArgumentError for a value the URL cannot take, Error for a header naming an unset environment variable.
 */
export function toolRequest(tool: ToolConfig, args: Record<string, unknown>, env: NodeJS.ProcessEnv): ToolRequest {
  // Only what the schema declares goes out: the model may add any name (customer_id, admin) to its arguments,
  // at the top (dropped even where additionalProperties lets it through) or inside a declared object.
  const declared = declaredProperties(tool);
  const sent = new Map<string, unknown>();
  for (const [name, value] of Object.entries(args)) {
    if (Object.hasOwn(declared, name) && value !== undefined) sent.set(name, declaredOnly(value, declared[name], tool.parameters));
  }
  const template = tool.http.url;
  const used = new Set<string>();
  const url = new URL(
    template.replace(PLACEHOLDER, (_, name: string) => {
      used.add(name);
      return placeholderValue(name, sent.get(name));
    }),
  );
  // The substituted URL must keep the template's scheme, host, port and the path up to the first placeholder.
  const first = template.search(PLACEHOLDER);
  if (first >= 0) {
    const base = new URL(template.slice(0, first));
    const same = url.origin === base.origin && url.username === base.username && url.password === base.password;
    if (!same || !url.pathname.startsWith(base.pathname)) {
      throw new ToolArgumentError(`the arguments would take the request outside the tool's URL ${base.origin}${base.pathname}`);
    }
  }
  const forwarded = [...sent];
  const headers: Record<string, string> = { accept: 'application/json' };
  for (const [name, value] of Object.entries(tool.http.headers)) headers[name.toLowerCase()] = expandEnv(value, env);
  const method = tool.http.method;
  let body: string | null = null;
  if (method === 'GET' || method === 'DELETE') {
    for (const [name, value] of forwarded) if (!used.has(name)) url.searchParams.set(name, queryValue(value));
  } else {
    body = JSON.stringify(Object.fromEntries(forwarded));
    headers['content-type'] = 'application/json';
  }
  return { url: url.toString(), method, headers, body };
}
