import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { ChatMessage } from '../core/messages.js';
import type { Store } from '../store/store.js';
import type { Accounting } from './accounting/accounting.js';
import type { Admission } from './admission.js';
import type { DaemonAudit } from './audit.js';
import type { RequestObservers } from './observers.js';
import type { Router } from './routing/failover.js';
import type { TenantQuotas } from './quotas.js';
import type { Shadow } from './shadow.js';
import type { SessionLocks } from './session-lock.js';
import type { ToolSet } from './tools/tool-set.js';
import type { Upstream } from './upstream.js';
import type { UpstreamInfo } from './upstream-info.js';

/** What every handler gets, built once per daemon (no module-level singletons). */
export interface DaemonServices {
  config: Config;
  store: Store;
  /** The primary upstream (the first configured): model name, context length, engine metrics. */
  upstream: Upstream;
  /** Chat requests go through this: upstream choice, failover, ejection (src/daemon/routing). */
  router: Router;
  /** Server-side tools from daemon.tools. */
  tools: ToolSet;
  /** Tokens and cost of every upstream reply (src/daemon/accounting). */
  accounting: Accounting;
  /** Quotas per tenant (config tenants): requests per minute, tokens per day, live sessions. */
  quotas: TenantQuotas;
  /** In-flight limit and bounded queue for chat requests. */
  admission: Admission;
  /** Mirrors a share of requests to daemon.shadow.upstream; null when not configured. */
  shadow: Shadow | null;
  upstreamInfo: UpstreamInfo;
  locks: SessionLocks;
  observers: RequestObservers;
  /** The audit log's queue and gate; null when store.audit is off. */
  audit: DaemonAudit | null;
  log: Logger;
  /**
   * Logs a stored turn as the store keeps it, redacted (daemon.logContent, a debugging switch): the raw text
   * would put what redaction keeps out of the database into the log file. null when the switch is off.
   */
  logStoredTurn: ((sessionId: string, messages: readonly ChatMessage[]) => void) | null;
  /** The clock for TTLs (ms since the epoch). */
  now: () => number;
}
