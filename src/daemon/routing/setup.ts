import type { Config, UpstreamConfig } from '../../core/config.js';
import { ConfigError } from '../../core/errors.js';
import { upstreamKindOf } from '../../compliance/redact.js';
import type { Logger } from '../../core/log.js';
import { createPooledUpstream, type Upstream } from '../upstream.js';
import { Router, type RoutingEvents } from './failover.js';
import { UpstreamMember, UpstreamSet } from './upstream-set.js';

export interface Routing {
  router: Router;
  /** The first upstream: where the served model and context are learnt, and what /metrics scrapes. */
  primary: Upstream;
  /** The shadow upstream (never routed to), when daemon.shadow is set. */
  shadow: UpstreamMember | null;
  close(): Promise<void>;
}

export interface RoutingSetupOptions {
  config: Config;
  /** Replaces the configured upstreams with one local upstream at this URL (the --upstream flag). */
  upstreamUrl?: string | undefined;
  /** One injected client instead of HTTP pools (tests, other engines); the caller closes it. */
  upstreamClient?: Upstream | undefined;
  env?: NodeJS.ProcessEnv;
  events?: RoutingEvents;
  log: Logger;
  now?: () => number;
}

/** Local only when it says so, or when its host is a loopback address (127.0.0.0/8, ::1, localhost). */
function kindOf(s: Pick<UpstreamConfig, 'kind' | 'url'>): 'local' | 'remote' {
  return s.kind ?? upstreamKindOf(s.url);
}

/** The configured upstreams, or the one default built from daemon.upstream and daemon.upstreamApiKey. */
export function upstreamConfigs(config: Config, upstreamUrl?: string): Array<UpstreamConfig & { apiKey?: string | undefined }> {
  const d = config.daemon;
  if (upstreamUrl !== undefined || d.upstreams.length === 0) {
    return [{ name: 'local', url: upstreamUrl ?? d.upstream, models: {}, weight: 1, mask: false, apiKey: d.upstreamApiKey }];
  }
  return d.upstreams;
}

/** Builds the upstream set, its router and the shadow upstream from the config; refuses contradictions. */
export function createRouting(options: RoutingSetupOptions): Routing {
  const { config, log } = options;
  const d = config.daemon;
  const env = options.env ?? process.env;
  const specs = options.upstreamClient
    ? [{ name: 'local', url: options.upstreamClient.url, models: {}, weight: 1, mask: false, kind: 'local' as const }]
    : upstreamConfigs(config, options.upstreamUrl);
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name))
      throw new ConfigError(`daemon.upstreams: the name "${s.name}" is used twice`, { next: 'Give each upstream its own name.' });
    names.add(s.name);
  }
  if (d.routing === 'cheapest') {
    const priced = specs.filter((s) => 'price' in s && s.price?.input !== undefined);
    const currencies = [...new Set(priced.map((s) => ('price' in s ? s.price!.currency : '')))];
    if (currencies.length > 1) {
      throw new ConfigError(
        `daemon.routing "cheapest" compares token prices, but the upstreams price tokens in ${currencies.join(' and ')}`,
        {
          next: 'Give every token price in one currency (converted at your rate), or set daemon.routing to "weighted".',
        },
      );
    }
    for (const s of specs) {
      if (!priced.includes(s))
        log(
          `daemon.routing is cheapest and upstream ${s.name} has no token price: one more request costs nothing there (a time-based price is paid anyway), so it is preferred while it has room`,
        );
    }
  }
  const shadowName = d.shadow?.upstream;
  if (shadowName !== undefined && !names.has(shadowName)) {
    throw new ConfigError(`daemon.shadow.upstream names "${shadowName}", which is not in daemon.upstreams`, {
      next: `Add it to daemon.upstreams, or use one of: ${[...names].join(', ')}.`,
    });
  }

  const clients: Upstream[] = [];
  const toMember = (s: (typeof specs)[number]): UpstreamMember => {
    let client = options.upstreamClient;
    if (!client) {
      let apiKey: string | undefined = 'apiKey' in s ? s.apiKey : undefined;
      if (s.apiKeyEnv !== undefined) {
        apiKey = env[s.apiKeyEnv];
        if (apiKey === undefined || apiKey === '') {
          throw new ConfigError(`upstream "${s.name}" takes its API key from $${s.apiKeyEnv}, which is not set`, {
            next: `Set ${s.apiKeyEnv} in the daemon's environment, or remove apiKeyEnv from that upstream.`,
          });
        }
      }
      client = createPooledUpstream({
        url: s.url,
        timeoutMs: d.upstreamTimeoutMs,
        idleTimeoutMs: d.streamIdleTimeoutMs,
        connections: d.upstreamConnections,
        apiKey,
      });
      clients.push(client);
    }
    return new UpstreamMember({
      name: s.name,
      kind: kindOf(s),
      mask: s.mask,
      weight: s.weight,
      models: s.models,
      client,
      price: 'price' in s ? s.price : undefined,
      limits: 'limits' in s ? s.limits : undefined,
    });
  };

  let shadow: UpstreamMember | null = null;
  const members: UpstreamMember[] = [];
  try {
    for (const s of specs) {
      if (s.kind === undefined && kindOf(s) === 'remote') {
        log(
          `upstream ${s.name} at ${s.url} is not a loopback address: treated as remote (daemon.allowRemote and store.redactUpstream "remote" apply); give it "kind": "local" in daemon.upstreams if it is a machine of this deployment`,
        );
      }
      if (kindOf(s) === 'remote' && !d.allowRemote) {
        if (s.name === shadowName) {
          throw new ConfigError(`the shadow upstream "${s.name}" is remote and daemon.allowRemote is false`, {
            next: 'Set daemon.allowRemote to true to send copies of requests off this machine, or shadow to a local upstream.',
          });
        }
        log(`upstream ${s.name} is remote and daemon.allowRemote is false: not used`);
        continue;
      }
      if (s.name === shadowName) shadow = toMember(s);
      else members.push(toMember(s));
    }
    if (members.length === 0) {
      throw new ConfigError(
        'no upstream can be used: every configured upstream is remote (or the shadow) and daemon.allowRemote is false; an upstream whose host is not a loopback address is remote unless it says "kind": "local"',
        {
          next: 'Add a local upstream (an address of this machine, or a LAN engine of this deployment in daemon.upstreams with "kind": "local"), or set daemon.allowRemote to true to use remote ones.',
        },
      );
    }
  } catch (err) {
    for (const c of clients) void c.close();
    throw err;
  }

  const set = new UpstreamSet(members, {
    ejectAfter: d.ejectAfterFailures,
    ejectBaseMs: d.ejectBaseMs,
    sticky: d.sticky,
    routing: d.routing,
    ...(options.now ? { now: options.now } : {}),
    onEject: (m, forMs) => {
      log(`upstream ${m.name} ejected for ${forMs} ms after repeated failures`);
      options.events?.ejected?.(m.name, forMs);
    },
  });
  const router = new Router(set, {
    maxAttempts: d.maxAttempts,
    retryBudgetPercent: d.retryBudgetPercent,
    timeoutMs: d.upstreamTimeoutMs,
    budgetWait: { maxQueue: d.admission.maxQueue, maxWaitMs: d.admission.maxQueueWaitMs },
    ...(options.events ? { events: options.events } : {}),
  });
  return {
    router,
    primary: members[0]!.client,
    shadow,
    async close() {
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}
