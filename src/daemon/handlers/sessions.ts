import { ApiError, sendJson } from '../api-error.js';
import type { RequestContext } from '../routes.js';
import { SESSION_ID_PATTERN } from '../security.js';
import { sessionTenant } from '../tenancy.js';
import type { DaemonServices } from '../services.js';
import { InvalidCursorError, type SessionInfo } from '../../store/sessions.js';

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function summary(info: SessionInfo) {
  return {
    id: info.id,
    tenant: info.tenant,
    profile: info.profile,
    turns: info.turns,
    createdAt: iso(info.createdAt),
    updatedAt: iso(info.updatedAt),
    expiresAt: iso(info.expiresAt),
  };
}

function sessionIdParam(ctx: RequestContext): string {
  const id = ctx.params.id ?? '';
  if (!SESSION_ID_PATTERN.test(id)) {
    throw new ApiError(400, 'a session id is 1-128 characters of letters, digits, ".", "_", ":" or "-"', {
      param: 'id',
      code: 'invalid_session_id',
    });
  }
  ctx.record.sessionId = id;
  return id;
}

/**
 * The tenant a session route reads or deletes in: the key's own, or for an admin key the one named by
 * ?tenant=. The audit record names it. Another tenant's session is absent to a key (404 like any absent one).
 */
function tenantOf(ctx: RequestContext, query: URLSearchParams): string {
  const tenant = sessionTenant(ctx.caller, query.get('tenant'))!;
  ctx.record.tenant = tenant;
  return tenant;
}

/**
 * GET /v1/sessions?limit=50&cursor=...&tenant=T: live sessions of the key's tenant, the latest to expire (most
 * recently used) first; an admin key sees every tenant's, or one tenant's with ?tenant=.
 */
export function listSessions(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const query = new URLSearchParams(ctx.query);
    const limitText = query.get('limit');
    const limit = limitText === null ? 50 : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ApiError(400, 'limit must be a whole number from 1 to 1000', { param: 'limit', code: 'invalid_value' });
    }
    let page;
    try {
      const tenant = sessionTenant(ctx.caller, query.get('tenant'), true);
      if (tenant !== null) ctx.record.tenant = tenant;
      page = await services.store.sessions.list({ tenant, now: services.now(), limit, cursor: query.get('cursor') });
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new ApiError(400, err.message, { param: 'cursor', code: 'invalid_value' });
      throw err;
    }
    sendJson(ctx.res, 200, { object: 'list', data: page.sessions.map(summary), nextCursor: page.nextCursor });
  };
}

/** GET /v1/sessions/:id: {"id", "messages", "createdAt", "updatedAt", "expiresAt"}; 404 when absent or expired. */
export function getSession(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const id = sessionIdParam(ctx);
    const tenant = tenantOf(ctx, new URLSearchParams(ctx.query));
    const session = await services.store.sessions.get(tenant, id, services.now());
    if (!session) throw new ApiError(404, `no session ${id} (it never existed, expired, or was deleted)`, { code: 'session_not_found' });
    sendJson(ctx.res, 200, { ...summary(session), messages: session.messages });
  };
}

/** How long DELETE waits for the deleted text to leave the files before it answers 202 (scheduled). */
const ERASE_WAIT_MS = 2000;

/** DELETE /v1/sessions/:id. */
export function deleteSession(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const id = sessionIdParam(ctx);
    const tenant = tenantOf(ctx, new URLSearchParams(ctx.query));
    // Wait for a turn in flight so it cannot re-create the session right after.
    const release = await services.locks.acquire(tenant, id, services.config.daemon.sessionWaitMs).catch(() => {
      throw new ApiError(409, `session ${id} is busy with a turn; try again when it has finished`, { code: 'session_busy' });
    });
    try {
      const existed = await services.store.sessions.delete(tenant, id);
      if (!existed) throw new ApiError(404, `no session ${id}`, { code: 'session_not_found' });
      // Erasure: answer once the text is gone from the database and WAL files too (a TRUNCATE checkpoint,
      // which waits for other readers); if that takes long, 202 says it is scheduled and retried until done.
      const scrubbed = await services.store.sessions.scrubbed(ERASE_WAIT_MS);
      sendJson(ctx.res, scrubbed ? 200 : 202, { id, tenant, object: 'session', deleted: true, scrubbed });
    } finally {
      release();
    }
  };
}
