import type { Logger } from '../core/log.js';
import { ApiError, sendError, storeUnavailable } from './api-error.js';
import type { DaemonAudit } from './audit.js';
import type { Authenticate } from './authenticate.js';
import type { TenantQuotas } from './quotas.js';
import type { KeyRateLimiter } from './rate-limit.js';
import type { RequestContext, RouteMatch } from './routes.js';
import { hostAllowed, originAllowed } from './security.js';
import { StoreUnavailableError } from '../store/store.js';

export interface DispatchOptions {
  route: (method: string, pathname: string) => RouteMatch;
  allowedHosts: ReadonlySet<string>;
  authenticate: Authenticate;
  audit: DaemonAudit | null;
  rateLimiter: KeyRateLimiter;
  quotas: TenantQuotas;
  draining: () => boolean;
}

/**
 * Every request's way in, in order: the drain, the audit log's fail-closed gate, Host and Origin (DNS
 * rebinding, browser pages), the key, the per-key rate and tenant quota on /v1, then the route's handler.
 */
export function createDispatch(o: DispatchOptions): (ctx: RequestContext, pathname: string) => Promise<void> {
  return async (ctx, pathname) => {
    const { req, res } = ctx;
    if (o.draining()) {
      res.shouldKeepAlive = false;
      throw new ApiError(503, 'the daemon is shutting down', { code: 'shutting_down', headers: { connection: 'close' } });
    }
    // The route is known before the checks below so that a request they refuse (host, key, rate, an
    // unreachable key store) is audited under the route it asked for; a missing route still answers only
    // after the key check, so a caller without a key learns nothing of the routes.
    const match = o.route(req.method ?? 'GET', pathname);
    if (match.kind === 'found') ctx.record.route = match.route;
    // Fail closed: while audit records cannot be written, nothing is served unaudited.
    o.audit?.admit(pathname, ctx.record);
    if (!hostAllowed(req.headers.host, o.allowedHosts)) {
      throw new ApiError(
        403,
        `Host "${req.headers.host ?? ''}" is not allowed; add it to daemon.allowedHosts in the config if it is this daemon's name`,
        { code: 'host_not_allowed' },
      );
    }
    if (!originAllowed(req.headers.origin, req.headers.host, o.allowedHosts)) {
      throw new ApiError(403, `Origin "${req.headers.origin}" is not allowed: browser pages from other sites may not use this daemon`, {
        code: 'origin_not_allowed',
      });
    }
    const caller = await o.authenticate(req, ctx.startedAt, ctx.record);
    if (!caller) {
      throw new ApiError(401, 'a valid API key is required: send Authorization: Bearer <key> (create one with cs-llm keys create)', {
        code: 'invalid_api_key',
        headers: { 'www-authenticate': 'Bearer' },
      });
    }
    ctx.caller = caller;
    // Health checks and metrics stay answerable whatever a key's rate; the API is limited per key.
    if (pathname.startsWith('/v1/')) {
      if (o.rateLimiter.active) o.rateLimiter.check(ctx.record.keyId, Date.now());
      if (o.quotas.limitsRequests) o.quotas.admitRequest(caller.tenant, Date.now());
    }
    if (match.kind === 'not-found') throw new ApiError(404, `no route ${req.method} ${pathname}`, { code: 'unknown_route' });
    if (match.kind === 'method-not-allowed') {
      throw new ApiError(405, `${req.method} is not allowed on ${pathname}; allowed: ${match.allow.join(', ')}`, {
        code: 'method_not_allowed',
        headers: { allow: match.allow.join(', ') },
      });
    }
    ctx.params = match.params;
    await match.handler(ctx);
  };
}

/** What a request that threw gets: its ApiError, or for a bug a plain 500 with the details only in the debug log. */
export function failRequest(ctx: RequestContext, err: unknown, log: Logger): void {
  if (err instanceof ApiError) {
    if (ctx.record.outcome === 'ok') ctx.record.outcome = 'rejected';
    if (err.code) ctx.record.errorCode = err.code;
    if (ctx.res.headersSent) ctx.res.end();
    else sendError(ctx.res, err);
    return;
  }
  if (err instanceof StoreUnavailableError) {
    // PostgreSQL away: a 503 the client may retry, the daemon goes on and recovers when it is back.
    log('store unavailable', err.message);
    ctx.record.outcome = 'store_failed';
    ctx.record.errorCode = 'store_unavailable';
    if (ctx.res.headersSent) ctx.res.destroy();
    else sendError(ctx.res, storeUnavailable(err));
    return;
  }
  log('request failed', err);
  ctx.record.outcome = 'upstream_failed';
  if (ctx.res.headersSent) ctx.res.destroy();
  else
    sendError(
      ctx.res,
      new ApiError(500, 'internal error in cs-llm daemon; rerun it with DEBUG=cs-llm:daemon for details', { code: 'internal_error' }),
    );
}
