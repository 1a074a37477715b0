import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Store } from '../store/store.js';
import type { RequestObservers } from './observers.js';
import type { SessionLocks } from './session-lock.js';
import type { Upstream } from './upstream.js';
import type { UpstreamInfo } from './upstream-info.js';

/** What every handler gets, built once per daemon (no module-level singletons). */
export interface DaemonServices {
  config: Config;
  store: Store;
  upstream: Upstream;
  upstreamInfo: UpstreamInfo;
  locks: SessionLocks;
  observers: RequestObservers;
  log: Logger;
  /** The clock for TTLs (ms since the epoch). */
  now: () => number;
}
