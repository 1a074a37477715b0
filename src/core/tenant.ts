// Tenants: who a stored conversation belongs to. The caller's API key decides it; without keys there is one
// implicit tenant, DEFAULT_TENANT, which is also where everything stored before tenants existed lives.

export const DEFAULT_TENANT = 'default';

/**
 * Tenant names: 1-64 letters, digits, ".", "_" or "-". No "/" or ":", so a tenant and a session id joined
 * with "/" name one session unambiguously, and a name is safe as a metrics label and in a file name.
 */
export const TENANT_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

export function isTenantName(name: string): boolean {
  return TENANT_PATTERN.test(name);
}

/** One string for (tenant, session id), for in-memory maps (session locks, caches); never stored. */
export function sessionKey(tenant: string, id: string): string {
  return `${tenant}/${id}`;
}
