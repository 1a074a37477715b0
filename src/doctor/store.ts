// The store check: where the daemon keeps conversations, and, for a PostgreSQL store, whether it answers
// from this host with a schema this cs-llm can use (several daemons share it: a newer one may have moved it on).

import { statSync } from 'node:fs';
import { isPostgresUrl, redactUrl } from '../store/location.js';
import type { Check } from './check.js';

export async function checkStore(location: string, timeoutMs = 2000): Promise<Check> {
  const base = { name: 'store' as const, neededByUp: true };
  if (!isPostgresUrl(location)) {
    const size = statSync(location, { throwIfNoEntry: false })?.size;
    const detail =
      size === undefined
        ? `SQLite at ${location}, created when the daemon first starts`
        : `SQLite at ${location} (${(size / 1048576).toFixed(1)} MiB)`;
    return { ...base, status: 'ok', detail, fix: null };
  }
  const where = redactUrl(location);
  // The driver loads only for a PostgreSQL store.
  const { probePostgres } = await import('../store/postgres-probe.js');
  const probe = await probePostgres(location, timeoutMs);
  if (!probe.ok) {
    return {
      ...base,
      status: 'fail',
      detail: `the PostgreSQL store at ${where} does not answer from this host: ${probe.message}`,
      fix: 'Check that PostgreSQL runs and listens where store.url (or CS_LLM_STORE_URL) says, that pg_hba.conf lets this user in from this host, and the password (PGPASSWORD or ~/.pgpass; keep it out of the URL in config files).',
    };
  }
  if (!probe.supported) {
    return {
      ...base,
      status: 'fail',
      detail: `the PostgreSQL store at ${where} (server ${probe.serverVersion}) has schema version ${probe.schemaVersion}, newer than this cs-llm understands`,
      fix: 'Upgrade cs-llm on this host to the version the other daemons run.',
    };
  }
  const schema = probe.schemaVersion === null ? 'empty: the daemon creates its tables at first start' : `schema ${probe.schemaVersion}`;
  return { ...base, status: 'ok', detail: `PostgreSQL ${probe.serverVersion} at ${where} answers (${schema})`, fix: null };
}
