import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Config } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { createLogger, type Logger } from '../core/log.js';
import { createDaemonMetrics, type DaemonMetricsOptions } from './metrics.js';
import type { Paths } from '../core/paths.js';
import { openStore, storeFile, type Store } from '../store/store.js';
import { protectionFor } from '../store/protection.js';
import { auditKeyFile, type AuditKeyring } from '../store/audit-key.js';
import { KeyRateLimiter } from './rate-limit.js';
import { createAuthenticator } from './authenticate.js';
import { createDispatch, failRequest } from './dispatch.js';
import { listen } from './listen.js';
import { startControlServer, type ControlServer } from './control.js';
import { localAdmin } from '../store/admin.js';
import { chatCompletions } from './handlers/chat-completions.js';
import { healthz, readyz } from './handlers/health.js';
import { models } from './handlers/models.js';
import { deleteSession, getSession, listSessions } from './handlers/sessions.js';
import { RequestObservers, type RequestListener, type RequestRecord } from './observers.js';
import { responsesRoutes } from './responses/routes.js';
import { createRouter, type RequestContext, type Route } from './routes.js';
import { allowedHostsFor, isLoopbackHost } from './security.js';
import { storedTurnLogger } from './stored-turn-log.js';
import type { DaemonServices } from './services.js';
import { SessionLocks } from './session-lock.js';
import { TenantQuotas, tokensTodayByTenant } from './quotas.js';
import { registerTenantMetrics } from './tenant-metrics.js';
import { NO_CALLER, requireAdmin } from './tenancy.js';
import type { Upstream } from './upstream.js';
import { UpstreamInfo } from './upstream-info.js';
import { startAccounting } from './accounting/accounting.js';
import { Admission } from './admission.js';
import { attachAudit, type DaemonAudit } from './audit.js';
import type { RoutingEvents } from './routing/failover.js';
import { createRoutingMetrics, type RoutingMetrics } from './routing/routing-metrics.js';
import { createRouting } from './routing/setup.js';
import { shadowWithAccounting } from './shadow-setup.js';
import { ToolSet } from './tools/tool-set.js';

export interface StartDaemonOptions {
  config: Config;
  paths: Paths;
  /** Overrides config.daemon.upstream. */
  upstream?: string;
  /** Overrides config.daemon.host. */
  host?: string;
  /** Overrides config.daemon.port; 0 picks a free port. */
  port?: number;
  /** An open store to use (the daemon then leaves closing it to the caller); else it opens its own. */
  store?: Store;
  /** Overrides store.path / the state directory's database file. */
  dbFile?: string;
  /** Serve the store operations of the CLI on this unix socket (control.ts); `daemon run` gives the state directory's. */
  controlSocket?: string;
  /** An Upstream implementation to use instead of the pooled HTTP one (tests, other engines). */
  upstreamClient?: Upstream;
  /** The clock for session TTLs. */
  now?: () => number;
  log?: Logger;
  /** /metrics sources: GPU sampling (false: off), engine relay timing. */
  metrics?: DaemonMetricsOptions;
}

export interface Daemon {
  url: string;
  host: string;
  port: number;
  store: Store;
  /** Called once per finished request with its timing (the metrics hook). Returns an unsubscribe function. */
  onRequest(listener: RequestListener): () => void;
  /** Requests being served right now. */
  inFlight(): number;
  /**
   * Graceful stop: no new connections, in-flight requests finish (up to daemon.shutdownTimeoutMs, or
   * `drainMs`), store closed. A later call while closing may shorten the drain (`drainMs: 0` cuts it now).
   */
  close(reason?: string, options?: { drainMs?: number }): Promise<void>;
}

function routesFor(services: DaemonServices): Route[] {
  return [
    { method: 'POST', path: '/v1/chat/completions', handler: chatCompletions(services) },
    { method: 'GET', path: '/v1/models', handler: models(services) },
    { method: 'GET', path: '/v1/sessions', handler: listSessions(services) },
    { method: 'GET', path: '/v1/sessions/:id', handler: getSession(services) },
    { method: 'DELETE', path: '/v1/sessions/:id', handler: deleteSession(services) },
    ...responsesRoutes(services),
    { method: 'GET', path: '/healthz', handler: healthz() },
    { method: 'GET', path: '/readyz', handler: readyz(services) },
  ];
}

/**
 * Starts the daemon: opens the store (unless given one), checks that a non-loopback bind has API keys,
 * listens, and starts the store's background upkeep. Resolves once it accepts connections.
 */
export async function startDaemon(options: StartDaemonOptions): Promise<Daemon> {
  const { config } = options;
  const log = options.log ?? createLogger('daemon');
  const host = options.host ?? config.daemon.host;
  const port = options.port ?? config.daemon.port;
  const ownsStore = options.store === undefined;
  // Redaction, encryption and retention of what the store keeps (docs/data-flow.md).
  const protection = ownsStore ? protectionFor(config, { onScrubError: (err) => log('scrub failed', (err as Error).message) }) : undefined;
  const store =
    options.store ??
    (await openStore({
      file: options.dbFile ?? storeFile(config, options.paths),
      synchronous: config.store.synchronous,
      busyTimeoutMs: config.store.busyTimeoutMs,
      poolSize: config.store.poolSize,
      protection,
    }));
  if (ownsStore) {
    try {
      await store.maintenance.requireContentKeys();
    } catch (err) {
      await store.close();
      throw err;
    }
  }
  // The audit key (a file outside the database, created on first use): without the key the log is chained
  // under, the daemon does not start with the audit log on; with it off, only the retention prune needs it.
  let auditRing: AuditKeyring | null = null;
  try {
    auditRing = await store.audit.keyring(auditKeyFile(config, options.paths));
  } catch (err) {
    if (config.store.audit) {
      if (ownsStore) await store.close();
      throw err;
    }
    log('audit retention is off: the audit key is not available', (err as Error).message);
  }
  const loopbackOnly = isLoopbackHost(host);
  if (!loopbackOnly && !(await store.keys.hasActiveKeys())) {
    if (ownsStore) await store.close();
    throw new ConfigError(`refusing to listen on ${host} without API keys: anyone who can reach this address could use the engine`, {
      next: 'Create a key first (cs-llm keys create <name>), or bind to 127.0.0.1 (the default).',
    });
  }
  // Routing and tool figures reach /metrics through these, bound once the metrics exist (below).
  let routingMetrics: RoutingMetrics | null = null;
  const routingEvents: RoutingEvents = {
    attempt: (u) => routingMetrics?.events.attempt?.(u),
    failure: (u, reason) => routingMetrics?.events.failure?.(u, reason),
    retry: (u) => routingMetrics?.events.retry?.(u),
    ejected: (u, ms) => routingMetrics?.events.ejected?.(u, ms),
  };
  let routing: ReturnType<typeof createRouting>;
  let tools: ToolSet;
  try {
    routing = createRouting({
      config,
      upstreamUrl: options.upstream,
      upstreamClient: options.upstreamClient,
      events: routingEvents,
      log,
      ...(options.now ? { now: options.now } : {}),
    });
    tools = new ToolSet(config, {
      onCall: (tool, outcome) => metrics.toolCalls.inc({ tool, outcome }),
      ...(options.now ? { now: options.now } : {}),
    });
  } catch (err) {
    if (ownsStore) await store.close();
    throw err;
  }
  const upstream = routing.primary;
  const d = config.daemon;
  const observers = new RequestObservers();
  let audit: DaemonAudit | null = null;
  try {
    if (config.store.audit && auditRing) {
      audit = attachAudit(store.audit, auditRing, observers, {
        upstreamUrl: upstream.url,
        flushMs: config.store.auditFlushMs,
        maxQueue: config.store.auditMaxQueue,
        log,
      });
    }
  } catch (err) {
    if (ownsStore) await store.close();
    await routing.close();
    throw err;
  }
  const accounting = startAccounting({
    store,
    upstreams: [...routing.router.set.members, ...(routing.shadow ? [routing.shadow] : [])],
    flushMs: config.store.usageFlushMs,
    power: () => metrics.gpus(),
    log,
  });
  const quotas = new TenantQuotas(config.tenants);
  // Today's tokens as the store's aggregates hold them, so a restart does not hand a tenant a fresh day.
  if (quotas.limitsTokens) {
    try {
      quotas.seedTokens(await tokensTodayByTenant(store, Date.now()), Date.now());
    } catch (err) {
      log("tokensPerDay quotas count from 0: today's usage could not be read", (err as Error).message);
    }
  }
  const services: DaemonServices = {
    config,
    store,
    quotas,
    upstream,
    router: routing.router,
    tools,
    accounting,
    admission: new Admission(d.admission),
    shadow: routing.shadow ? shadowWithAccounting(config, routing.shadow, accounting, log, (r) => routingMetrics?.shadow(r)) : null,
    upstreamInfo: new UpstreamInfo(upstream),
    locks: new SessionLocks(),
    observers,
    audit,
    log,
    logStoredTurn: config.daemon.logContent ? storedTurnLogger(config, protection, log) : null,
    now: options.now ?? Date.now,
  };
  const metrics = createDaemonMetrics(
    {
      store,
      upstream,
      engines: routing.router.set.members.map((m) => m.client),
      upstreamInfo: services.upstreamInfo,
      inFlight: () => inFlight,
      queued: () => services.locks.waiting + services.admission.waiting + services.router.waiting,
      now: services.now,
    },
    options.metrics,
  );
  routingMetrics = createRoutingMetrics(metrics.registry, routing.router.set);
  accounting.register(metrics.registry);
  observers.add(metrics.observe);
  registerTenantMetrics(metrics.registry, observers, quotas);
  audit?.register(metrics.registry);
  const route = createRouter([
    ...routesFor(services),
    {
      method: 'GET',
      path: '/metrics',
      handler: (ctx) => {
        // Every tenant's figures: an operator's (once keys exist; without keys the caller is the open one).
        requireAdmin(ctx.caller, '/metrics');
        return metrics.handler(ctx);
      },
    },
  ]);
  const allowedHosts = allowedHostsFor(host, config.daemon.allowedHosts);

  const rateLimiter = new KeyRateLimiter(config.daemon.rateLimit);
  let inFlight = 0;
  let draining = false;
  let onDrained: (() => void) | null = null;

  const authenticate = createAuthenticator(store, loopbackOnly);
  const dispatch = createDispatch({ route, allowedHosts, authenticate, audit, rateLimiter, quotas, draining: () => draining });

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const startedAt = performance.now();
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q >= 0 ? url.slice(0, q) : url;
    const ctx: RequestContext = {
      req,
      res,
      params: {},
      query: q >= 0 ? url.slice(q + 1) : '',
      startedAt,
      caller: NO_CALLER,
      record: { route: 'unmatched', stream: false, session: false, upstreamMs: 0, outcome: 'ok' },
    };
    inFlight++;
    // A request is over when its response has closed AND its handler has returned (a handler may still be
    // recording why the client went away): only then is it counted out and reported.
    let pendingParts = 2;
    const partDone = () => {
      if (--pendingParts > 0) return;
      inFlight--;
      if (observers.active) {
        // The request's own record completed in place (no copy of it per request, #21): nothing writes to it
        // after this point, and listeners take what they keep from it synchronously.
        const record = ctx.record as RequestRecord;
        record.method = req.method ?? '';
        record.status = res.statusCode;
        record.totalMs = performance.now() - startedAt;
        record.overheadMs = record.totalMs - record.upstreamMs;
        observers.emit(record);
      }
      if (inFlight === 0 && onDrained) onDrained();
    };
    res.once('close', partDone);
    dispatch(ctx, pathname)
      .catch((err: unknown) => failRequest(ctx, err, log))
      .finally(partDone);
  };

  const server = createServer({ keepAliveTimeout: 65_000 }, onRequest);
  // A malformed request line or headers: answer 400 instead of dropping the socket silently.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (socket.writable && err.code !== 'ECONNRESET')
      socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    else socket.destroy();
  });
  let address: AddressInfo;
  let control: ControlServer | null = null;
  try {
    address = await listen(server, host, port);
    // The CLI's writing store commands, done by this process while it runs: one writer (control.ts).
    if (options.controlSocket) {
      const ring = auditRing;
      control = await startControlServer({
        path: options.controlSocket,
        admin: localAdmin(store, ring ? { auditKey: () => Promise.resolve(ring) } : {}),
        locks: services.locks,
        sessionWaitMs: d.sessionWaitMs,
        auditKeyFile: ring ? auditKeyFile(config, options.paths) : null,
        observers,
        log,
      });
    }
  } catch (err) {
    server.close();
    audit?.close();
    await accounting.close();
    if (ownsStore) await store.close();
    await routing.close();
    await metrics.close();
    throw err;
  }
  const stopMaintenance = store.maintenance.start({
    checkpointIntervalMs: config.store.checkpointIntervalMs,
    sweepIntervalMs: config.store.sweepIntervalMs,
    auditRetentionMs: auditRing ? config.store.auditRetentionDays * 86_400_000 : 0,
    ...(auditRing ? { auditKey: auditRing } : {}),
    now: services.now,
    onError: (what, err) => log(`${what} failed`, (err as Error).message),
    onSweep: (n) => log(`swept ${n} expired session(s)`),
    onAuditPrune: (n) => log(`pruned ${n} audit record(s) past ${config.store.auditRetentionDays} days`),
  });
  // Learn the served model and its context early, so the first turn does not wait for it.
  void services.upstreamInfo.get();

  const urlHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const daemonUrl = `http://${urlHost === '0.0.0.0' || urlHost === '[::]' ? '127.0.0.1' : urlHost}:${address.port}`;
  log(`listening on ${daemonUrl}, upstream ${upstream.url}, database ${store.file}`);

  let closing: Promise<void> | null = null;
  let endDrain: (() => void) | null = null;
  return {
    url: daemonUrl,
    host,
    port: address.port,
    store,
    onRequest: (listener) => observers.add(listener),
    inFlight: () => inFlight,
    close(reason = 'close() called', { drainMs } = {}) {
      if (closing) {
        if (drainMs === 0) endDrain?.();
        return closing;
      }
      closing = (async () => {
        log(`shutting down: ${reason}; ${inFlight} request(s) in flight`);
        draining = true;
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        if (inFlight > 0) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, drainMs ?? config.daemon.shutdownTimeoutMs);
            onDrained = endDrain = () => {
              clearTimeout(timer);
              resolve();
            };
          });
        }
        server.closeAllConnections();
        await closed;
        await control?.close();
        await accounting.close();
        await stopMaintenance();
        await metrics.close();
        await services.shadow?.idle();
        await routing.close();
        audit?.close();
        if (ownsStore) await store.close();
        log(`stopped: ${reason}`);
      })();
      return closing;
    },
  };
}
