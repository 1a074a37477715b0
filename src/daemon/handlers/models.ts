import { performance } from 'node:perf_hooks';
import type { RequestContext } from '../routes.js';
import type { DaemonServices } from '../services.js';
import { collectBody, upstreamFailure } from '../upstream.js';

/** GET /v1/models: the upstream's list, status and body as they are. */
export function models(services: DaemonServices) {
  return async (ctx: RequestContext): Promise<void> => {
    const started = performance.now();
    try {
      const upstream = await services.upstream.request({ method: 'GET', path: '/v1/models', headers: { accept: 'application/json' } });
      const body = await collectBody(upstream.body, services.config.daemon.upstreamReplyLimitBytes);
      ctx.record.upstreamMs = performance.now() - started;
      ctx.res.writeHead(upstream.statusCode, {
        'content-type': String(upstream.headers['content-type'] ?? 'application/json'),
        'content-length': String(body.length),
      });
      ctx.res.end(body);
    } catch (err) {
      ctx.record.upstreamMs = performance.now() - started;
      ctx.record.outcome = 'upstream_failed';
      throw upstreamFailure(err, services.upstream.url, services.config.daemon.upstreamTimeoutMs);
    }
  };
}
