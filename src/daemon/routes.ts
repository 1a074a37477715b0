import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestRecord } from './observers.js';
import type { Caller } from './tenancy.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  /** The query string without '?', '' when absent. */
  query: string;
  /** performance.now() when the request arrived. */
  startedAt: number;
  /** Who the request acts for (its key's tenant, profiles, admin), set once the key was checked. */
  caller: Caller;
  /**
   * Filled in by the handler; the server adds method, status and the timings it measures itself and emits
   * it as a RequestRecord when the response is over.
   */
  record: Omit<RequestRecord, 'method' | 'status' | 'totalMs' | 'overheadMs'>;
}

export type Handler = (ctx: RequestContext) => Promise<void> | void;

export interface Route {
  method: string;
  /** Literal segments and `:name` parameters, e.g. /v1/sessions/:id. */
  path: string;
  handler: Handler;
}

export type RouteMatch =
  | { kind: 'found'; handler: Handler; params: Record<string, string>; route: string }
  | { kind: 'method-not-allowed'; allow: string[] }
  | { kind: 'not-found' };

interface Compiled {
  path: string;
  segments: string[];
  byMethod: Map<string, Handler>;
}

/**
 * A route table: exact paths are one Map lookup, parameterised paths a short segment match. 405 (with
 * Allow) when the path exists under other methods, 404 otherwise.
 */
export function createRouter(routes: Route[]): (method: string, pathname: string) => RouteMatch {
  const exact = new Map<string, Map<string, Handler>>();
  const patterns: Compiled[] = [];
  for (const route of routes) {
    if (route.path.includes('/:')) {
      const segments = route.path.split('/');
      let compiled = patterns.find((p) => p.path === route.path);
      if (!compiled) patterns.push((compiled = { path: route.path, segments, byMethod: new Map() }));
      compiled.byMethod.set(route.method, route.handler);
    } else {
      const methods = exact.get(route.path) ?? new Map<string, Handler>();
      methods.set(route.method, route.handler);
      exact.set(route.path, methods);
    }
  }

  const pick = (route: string, methods: Map<string, Handler>, method: string, params: Record<string, string>): RouteMatch => {
    const handler = methods.get(method);
    if (handler) return { kind: 'found', handler, params, route };
    return { kind: 'method-not-allowed', allow: [...methods.keys()] };
  };

  return (method, pathname) => {
    const path = pathname.length > 1 && pathname.endsWith('/') ? pathname.slice(0, -1) : pathname;
    const methods = exact.get(path);
    if (methods) return pick(path, methods, method, {});
    const parts = path.split('/');
    for (const pattern of patterns) {
      if (pattern.segments.length !== parts.length) continue;
      const params: Record<string, string> = {};
      let ok = true;
      for (let i = 0; i < parts.length && ok; i++) {
        const want = pattern.segments[i]!;
        const got = parts[i]!;
        if (want.startsWith(':')) {
          if (got === '') ok = false;
          else {
            try {
              params[want.slice(1)] = decodeURIComponent(got);
            } catch {
              ok = false;
            }
          }
        } else if (want !== got) ok = false;
      }
      if (ok) return pick(pattern.path, pattern.byMethod, method, params);
    }
    return { kind: 'not-found' };
  };
}
