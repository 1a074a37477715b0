// Who a Responses or Conversations request acts for: its tenant (every response and conversation it stores
// or reads is that tenant's) and the profile its turns run under (the key's profiles only).
import type { Profile } from '../../core/config.js';
import { requestHeader } from '../relay.js';
import type { RequestContext } from '../routes.js';
import type { DaemonServices } from '../services.js';
import { profileForCaller } from '../tenancy.js';

/** The caller's tenant, as its key decided at auth time. */
export function tenantOf(ctx: RequestContext): string {
  return ctx.caller.tenant;
}

/** X-Profile when the key may use it (403 otherwise), else the key's first profile, else the default one. */
export function profileOf(services: DaemonServices, ctx: RequestContext): { name: string; profile: Profile } {
  return profileForCaller(services.config, ctx.caller, requestHeader(ctx.req, 'x-profile'));
}
