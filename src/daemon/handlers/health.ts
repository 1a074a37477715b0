import { sendJson } from '../api-error.js';
import type { RequestContext } from '../routes.js';
import type { DaemonServices } from '../services.js';

/** GET /healthz: the process is up and serving HTTP. */
export function healthz() {
  return (ctx: RequestContext): void => {
    sendJson(ctx.res, 200, { status: 'ok' });
  };
}

async function upstreamAnswers(services: DaemonServices): Promise<string | null> {
  // vLLM answers /health once the model is loaded; engines without it are probed with /v1/models.
  for (const path of ['/health', '/v1/models']) {
    try {
      const res = await services.upstream.request({ method: 'GET', path, timeoutMs: 2000 });
      res.body.resume();
      if (res.statusCode === 200) return null;
      if (res.statusCode !== 404) return `${path} answered ${res.statusCode}`;
    } catch (err) {
      return `${path}: ${(err as Error).message}`;
    }
  }
  return 'no /health or /v1/models';
}

/**
 * GET /readyz: the store answers a query, the audit log can be written (its queue is not full) and the upstream
 * engine is healthy. 503 with the reasons otherwise.
 */
export function readyz(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    let store = 'ok';
    try {
      await services.store.ping();
    } catch (err) {
      store = `failed: ${(err as Error).message}`;
    }
    const upstreamProblem = await upstreamAnswers(services);
    const upstream = upstreamProblem === null ? 'ok' : `failed: ${upstreamProblem}`;
    const a = services.audit;
    const audit = !a ? 'off' : a.available ? 'ok' : `failed: ${a.queued} records not written (limit ${a.maxQueue}); see the daemon log`;
    const ready = store === 'ok' && upstream === 'ok' && !audit.startsWith('failed');
    sendJson(ctx.res, ready ? 200 : 503, {
      status: ready ? 'ready' : 'not ready',
      store,
      audit,
      upstream,
      upstreamUrl: services.upstream.url,
    });
  };
}
