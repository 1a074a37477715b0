import type { IncomingMessage } from 'node:http';
import type { Store } from '../store/store.js';
import type { RequestContext } from './routes.js';
import { bearerToken } from './security.js';
import { callerOf, OPEN_CALLER, type Caller } from './tenancy.js';

export type Authenticate = (req: IncomingMessage, now: number, record: RequestContext['record']) => Promise<Caller | null>;

/**
 * Who a request is (tenant, profiles, admin), from the same lookup that checks its key; null: no valid key.
 * On loopback with no key in the store, the implicit default tenant with every right (as before keys existed);
 * any other bind always needs a key.
 */
export function createAuthenticator(store: Store, loopbackOnly: boolean): Authenticate {
  // Whether any key exists, re-read at most once a second: a key created with `cs-llm keys create` (another
  // process) is required from a second later on; revocation is immediate (verify reads the key's row).
  // The requests that find it stale while it is being re-read share that one read: on PostgreSQL each read is
  // a round trip, and 50 requests in flight each sent their own (a third of a query per session turn).
  let keysKnownAt = Number.NEGATIVE_INFINITY;
  let keysGeneration = -1;
  let keysExist = false;
  // A read started before a key was created here (the generation moved) is not shared: it may miss the key.
  let reading: { generation: number; exist: Promise<boolean> } | null = null;
  const keysRequired = async (now: number): Promise<boolean> => {
    if (!loopbackOnly) return true;
    if (now - keysKnownAt > 1000 || keysGeneration !== store.keys.generation) {
      const generation = store.keys.generation;
      if (reading?.generation !== generation) {
        const read = store.keys.hasActiveKeys().finally(() => {
          if (reading === current) reading = null;
        });
        const current = { generation, exist: read };
        reading = current;
        const exist = await read;
        keysGeneration = generation;
        keysExist = exist;
        keysKnownAt = now;
        return exist;
      }
      return reading.exist;
    }
    return keysExist;
  };

  return async (req, now, record) => {
    if (!(await keysRequired(now))) {
      record.callerTenant = record.tenant = OPEN_CALLER.tenant;
      return OPEN_CALLER;
    }
    const token = bearerToken(req.headers.authorization);
    const key = token === null ? null : await store.keys.verify(token);
    if (!key) return null;
    // The audit log's "who": the key's public prefix (what keys list shows), never the key.
    record.keyId = key.prefix;
    record.callerTenant = record.tenant = key.tenant;
    return callerOf(key);
  };
}
