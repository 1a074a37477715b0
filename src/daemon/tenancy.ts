// Who a request acts for, decided once at auth time from its API key and carried on the request context:
// the tenant whose conversations it reaches, the profiles it may name, and whether it is an operator's
// (admin) key. docs/daemon.md: tenants.
import { profileFor, type Config, type Profile } from '../core/config.js';
import { DEFAULT_TENANT, isTenantName } from '../core/tenant.js';
import type { KeyInfo } from '../store/keys.js';
import { ApiError } from './api-error.js';

export interface Caller {
  /** The key's public prefix; null while no key exists (loopback). */
  readonly keyId: string | null;
  /** The key's tenant: its turns and sessions live there, its quotas and metrics are that tenant's. */
  readonly tenant: string;
  /** The profiles it may name with X-Profile, its default first; null: every profile. */
  readonly profiles: readonly string[] | null;
  /** An operator: every tenant's sessions (with ?tenant=), /metrics. */
  readonly admin: boolean;
}

/** No keys (the loopback default): one implicit tenant, every profile, nothing held back, as before tenants. */
export const OPEN_CALLER: Caller = Object.freeze({ keyId: null, tenant: DEFAULT_TENANT, profiles: null, admin: true });

/** Until the key is checked: no tenant's data, no profile, no admin (handlers only run after the check). */
export const NO_CALLER: Caller = Object.freeze({ keyId: null, tenant: DEFAULT_TENANT, profiles: Object.freeze([]), admin: false });

export function callerOf(key: KeyInfo): Caller {
  return { keyId: key.prefix, tenant: key.tenant, profiles: key.profiles, admin: key.admin };
}

/**
 * The profile a request names; an unknown name is a 400 that lists the configured ones. Own properties only:
 * "toString" or "__proto__" name no profile.
 */
export function profileNamed(config: Config, name: string): Profile {
  if (name !== config.defaultProfile && !Object.hasOwn(config.profiles, name)) {
    throw new ApiError(
      400,
      `unknown profile "${name}"; configured: ${[config.defaultProfile, ...Object.keys(config.profiles)].join(', ')}`,
      {
        param: 'X-Profile',
        code: 'unknown_profile',
      },
    );
  }
  return profileFor(config, name);
}

/**
 * The profile a turn runs under: X-Profile when the key may use it (403 profile_not_allowed otherwise), else
 * the key's first profile, else defaultProfile. A configured name is still required (400 unknown_profile).
 */
export function profileForCaller(config: Config, caller: Caller, header: string | undefined): { name: string; profile: Profile } {
  const { profiles } = caller;
  if (header === undefined) {
    const name = profiles?.[0] ?? config.defaultProfile;
    return { name, profile: profileNamed(config, name) };
  }
  requireProfileAllowed(caller, header);
  return { name: header, profile: profileNamed(config, header) };
}

/** 403 profile_not_allowed when the key is limited to profiles that do not include `name`. */
export function requireProfileAllowed(caller: Caller, name: string): void {
  if (caller.profiles !== null && !caller.profiles.includes(name)) {
    throw new ApiError(403, `this API key may not use profile "${name}"; its profiles: ${caller.profiles.join(', ')}`, {
      param: 'X-Profile',
      code: 'profile_not_allowed',
    });
  }
}

/**
 * The tenant whose sessions a /v1/sessions request reads or deletes: the key's own; an admin key may name
 * another with ?tenant=T. A key naming a tenant not its own is 403 (which says nothing about any session);
 * for an admin listing without ?tenant=, null: every tenant.
 */
export function sessionTenant(caller: Caller, requested: string | null, listing = false): string | null {
  if (requested === null) return caller.admin && listing ? null : caller.tenant;
  if (!isTenantName(requested)) {
    throw new ApiError(400, 'tenant must be 1-64 letters, digits, ".", "_" or "-"', { param: 'tenant', code: 'invalid_value' });
  }
  if (requested !== caller.tenant && !caller.admin) {
    throw new ApiError(403, `this API key belongs to tenant "${caller.tenant}" and may not name another tenant`, {
      param: 'tenant',
      code: 'tenant_not_allowed',
    });
  }
  return requested;
}

/** /metrics and other operators' routes: once keys exist, an admin key only. */
export function requireAdmin(caller: Caller, what: string): void {
  if (!caller.admin) {
    throw new ApiError(403, `${what} needs an admin key (cs-llm keys create NAME --admin)`, { code: 'admin_key_required' });
  }
}
