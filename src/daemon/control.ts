// The daemon's control socket: the store operations an operator runs from the CLI (erase a session, prune
// sessions or audit records, scrub, rotate the content key) done by the daemon itself while it runs, so that
// one process writes the database and no command holds a lock the daemon's requests would wait for.
// A unix socket in the state directory (0700), itself 0600: being able to connect is being the daemon's user
// (or root), which is the authentication; no API key. JSON over HTTP/1.1; control-client.ts is the other end.
//
// Each route takes a JSON object whose fields are the operation's request (src/store/admin.ts). A field this
// daemon does not know is refused rather than ignored: a newer CLI (one that sends a tenant, say) talking to
// an older daemon must not have its request done more widely than it asked.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmodSync, unlinkSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConfigError, ConflictError, EnvironmentError, isCsLlmError, UsageError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { DEFAULT_TENANT, isTenantName } from '../core/tenant.js';
import { ensurePrivateDir } from '../core/paths.js';
import type { StoreAdmin } from '../store/admin.js';
import type { RequestObservers } from './observers.js';
import type { SessionLocks } from './session-lock.js';

const MAX_BODY = 64 * 1024;

type Body = Record<string, unknown>;
type Kind = 'string' | 'number' | 'number|null' | 'boolean';

/** The body's fields, checked against what the route knows; throws a usage error naming the first wrong one. */
function fieldsOf<T>(route: string, body: Body, known: Record<string, { kind: Kind; required?: boolean }>): T {
  for (const name of Object.keys(body)) {
    if (!Object.hasOwn(known, name))
      throw new UsageError(`this daemon does not know the field "${name}" of ${route}: it runs an older cs-llm than this command`, {
        next: 'Restart the daemon with this version (cs-llm daemon stop, then start it again), then run the command again.',
      });
  }
  for (const [name, { kind, required }] of Object.entries(known)) {
    const value = body[name];
    if (value === undefined) {
      if (required) throw new UsageError(`${route} needs the field "${name}"`);
      continue;
    }
    const ok =
      kind === 'string'
        ? typeof value === 'string'
        : kind === 'boolean'
          ? typeof value === 'boolean'
          : (typeof value === 'number' && Number.isFinite(value)) || (kind === 'number|null' && value === null);
    if (!ok) throw new UsageError(`the field "${name}" of ${route} must be a ${kind}`);
  }
  return body as T;
}

function checkTenant(tenant: string): void {
  if (!isTenantName(tenant)) throw new UsageError(`tenant "${tenant}" must be 1-64 letters, digits, ".", "_" or "-"`);
}

export interface ControlServer {
  path: string;
  /** Stops accepting, stops the operations running (between their batches) and waits for them to answer. */
  close(): Promise<void>;
}

/** Whether something accepts connections on the socket file (a running daemon), or it is left over. */
function answers(path: string): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('error', () => resolvePromise(false));
  });
}

function readBody(req: IncomingMessage): Promise<Body> {
  return new Promise((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY) {
        reject(new UsageError(`a control request is at most ${MAX_BODY} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      try {
        const text = Buffer.concat(chunks).toString('utf8');
        const body = text === '' ? {} : (JSON.parse(text) as unknown);
        if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error('not an object');
        resolvePromise(body as Body);
      } catch {
        reject(new UsageError('a control request body is a JSON object'));
      }
    });
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * Serves the control socket at `path` (removing a socket file left by a daemon that is gone; refusing when
 * another daemon answers on it). Resolves once it listens. Each operation is logged and goes to the request
 * observers (so to the audit log and /metrics) as route `control:<route>`.
 */
export async function startControlServer(options: {
  path: string;
  admin: StoreAdmin;
  locks: SessionLocks;
  /** How long a session delete waits for a turn in flight on that session. */
  sessionWaitMs: number;
  /** The audit key file the daemon signs with: an audit prune asked with another one is refused. */
  auditKeyFile: string | null;
  observers: RequestObservers;
  log: Logger;
}): Promise<ControlServer> {
  const { path, admin, locks, log } = options;

  const operations: Record<string, (body: Body, signal: AbortSignal, record: { sessionId?: string; tenant?: string }) => Promise<unknown>> =
    {
      '/sessions/delete': async (body, signal, record) => {
        const { id, tenant = DEFAULT_TENANT } = fieldsOf<{ id: string; tenant?: string }>('/sessions/delete', body, {
          id: { kind: 'string', required: true },
          tenant: { kind: 'string' },
        });
        checkTenant(tenant);
        record.sessionId = id;
        record.tenant = tenant;
        // As DELETE /v1/sessions/:id: a turn in flight finishes first, so it cannot re-create the session after.
        const release = await locks.acquire(tenant, id, options.sessionWaitMs).catch(() => {
          throw new ConflictError(`session ${id} is busy with a turn that did not finish within ${options.sessionWaitMs} ms`, {
            next: 'Try again when the turn has finished.',
          });
        });
        try {
          return await admin.deleteSession({ id, tenant }, signal);
        } finally {
          release();
        }
      },
      '/sessions/delete-tenant': (body, signal, record) => {
        const { tenant } = fieldsOf<{ tenant: string }>('/sessions/delete-tenant', body, { tenant: { kind: 'string', required: true } });
        checkTenant(tenant);
        record.tenant = tenant;
        return admin.deleteTenant({ tenant }, signal);
      },
      '/sessions/prune': (body, signal, record) => {
        const request = fieldsOf<{ olderThanMs: number | null; tenant?: string }>(
          '/sessions/prune',
          { olderThanMs: null, ...body },
          { olderThanMs: { kind: 'number|null' }, tenant: { kind: 'string' } },
        );
        if (request.tenant !== undefined) {
          checkTenant(request.tenant);
          record.tenant = request.tenant;
        }
        return admin.pruneSessions(request, signal);
      },
      '/audit/prune': (body, signal) => {
        const { before, keyFile } = fieldsOf<{ before: number; keyFile?: string }>('/audit/prune', body, {
          before: { kind: 'number', required: true },
          keyFile: { kind: 'string' },
        });
        if (options.auditKeyFile === null)
          throw new ConfigError('the running daemon has no audit key, so it cannot sign a new retention anchor', {
            next: 'See the daemon log for why the audit key could not be read.',
          });
        if (keyFile !== undefined && resolve(keyFile) !== resolve(options.auditKeyFile))
          throw new ConflictError(`the running daemon signs the audit log with ${options.auditKeyFile}, not ${keyFile}`, {
            next: "Leave out --key-file to prune with the daemon's key, or stop the daemon to prune with another key file.",
          });
        return admin.pruneAudit({ before }, signal);
      },
      '/store/scrub': (body, signal) =>
        admin.scrub(fieldsOf<{ rewrite?: boolean }>('/store/scrub', body, { rewrite: { kind: 'boolean' } }), signal),
      '/store/rotate-key': (body, signal) =>
        admin.rotateKey(fieldsOf<{ key: string }>('/store/rotate-key', body, { key: { kind: 'string', required: true } }), signal),
    };

  // Operations running now: stopped between their batches when the daemon stops or their client goes away.
  const running = new Set<{ abort: AbortController; done: Promise<void> }>();

  const server: Server = createServer((req, res) => {
    const startedAt = performance.now();
    const route = (req.url ?? '').split('?')[0]!;
    const operation = req.method === 'POST' && Object.hasOwn(operations, route) ? operations[route]! : undefined;
    if (!operation) {
      send(res, 404, { error: { message: `no control operation ${req.method} ${route}`, exitCode: 2 } });
      return;
    }
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) abort.abort('the command went away');
    });
    const record: { sessionId?: string; tenant?: string } = {};
    const done = readBody(req)
      .then((body) => operation(body, abort.signal, record))
      .then(
        (result) => {
          log(`control: ${route} done`, JSON.stringify(result));
          send(res, 200, result);
          return 200;
        },
        (err: unknown) => {
          log(`control: ${route} failed`, err as Error);
          const known = isCsLlmError(err);
          const status = known ? (err instanceof ConflictError ? 409 : 400) : 500;
          send(res, status, {
            error: {
              message: (err as Error).message,
              next: known ? (err.next ?? null) : 'See the daemon log.',
              exitCode: known ? err.exitCode : 1,
            },
          });
          return status;
        },
      )
      .then((status) => {
        const totalMs = performance.now() - startedAt;
        options.observers.emit({
          route: `control:${route}`,
          method: 'POST',
          status,
          stream: false,
          session: false,
          outcome: status === 200 ? 'ok' : 'rejected',
          totalMs,
          upstreamMs: 0,
          overheadMs: totalMs,
          ...(record.sessionId ? { sessionId: record.sessionId } : {}),
          ...(record.tenant ? { tenant: record.tenant } : {}),
        });
      });
    const entry = { abort, done };
    running.add(entry);
    void done.finally(() => running.delete(entry));
  });

  ensurePrivateDir(dirname(path));
  if (await answers(path)) {
    throw new EnvironmentError(`another daemon answers on the control socket ${path}`, {
      next: 'Stop it first (cs-llm daemon stop), or give this one another state directory (CS_LLM_HOME).',
    });
  }
  try {
    unlinkSync(path);
  } catch {
    // none left over
  }
  try {
    await new Promise<void>((resolvePromise, reject) => {
      server.once('error', reject);
      // Created 0600: the umask is narrowed while it binds (listen binds before it returns). The directory is 0700.
      const umask = process.umask(0o077);
      try {
        server.listen(path, () => {
          server.off('error', reject);
          resolvePromise();
        });
      } finally {
        process.umask(umask);
      }
    });
  } catch (err) {
    throw new EnvironmentError(`cannot serve the control socket ${path}: ${(err as Error).message}`, {
      next: 'A unix socket path is at most 107 bytes: use a shorter CS_LLM_HOME, or check that the state directory is writable.',
      cause: err,
    });
  }
  chmodSync(path, 0o600);
  return {
    path,
    async close() {
      const closed = new Promise<void>((resolvePromise) => server.close(() => resolvePromise()));
      for (const op of running) op.abort.abort('the daemon is stopping');
      await Promise.all([...running].map((op) => op.done));
      server.closeAllConnections();
      await closed;
    },
  };
}
