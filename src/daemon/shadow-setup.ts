import { bodyForUpstream } from '../compliance/upstream-redaction.js';
import type { Config } from '../core/config.js';
import type { Logger } from '../core/log.js';
import type { Accounting } from './accounting/accounting.js';
import type { UpstreamMember } from './routing/upstream-set.js';
import { Shadow, type ShadowOptions } from './shadow.js';

/**
 * The daemon's shadow upstream from daemon.shadow: its copies leave redacted like any request to that upstream,
 * and their tokens are accounted (tenant "(shadow)"), since a shadow engine costs money too.
 */
export function shadowWithAccounting(
  config: Config,
  member: UpstreamMember,
  accounting: Accounting,
  log: Logger,
  onResult: NonNullable<ShadowOptions['onResult']>,
): Shadow {
  const shadow = config.daemon.shadow!;
  return new Shadow({
    member,
    percent: shadow.percent,
    model: shadow.model,
    timeoutMs: config.daemon.upstreamTimeoutMs,
    replyLimitBytes: config.daemon.upstreamReplyLimitBytes,
    log,
    onResult,
    onUsage: (t, model) => {
      const tokens = { prompt: t.promptTokens ?? 0, cached: t.cachedTokens ?? 0, completion: t.completionTokens ?? 0 };
      accounting.record({ upstream: member, model: model ?? '', tenant: '(shadow)', keyId: '', sessionStarted: false, tokens });
    },
    prepare: (m, body) => bodyForUpstream(config, m, body),
  });
}
