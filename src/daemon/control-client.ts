// The CLI's end of the daemon's control socket (control.ts): the store operations, asked of the running
// daemon instead of done on a second connection to its database.

import { request } from 'node:http';
import { resolve } from 'node:path';
import { ConfigError, ConflictError, CsLlmError, EnvironmentError, ExitCode, NotFoundError, UsageError } from '../core/errors.js';
import type { Paths } from '../core/paths.js';
import type { StoreAdmin } from '../store/admin.js';
import { daemonProcess, readDaemonState } from './lifecycle.js';

interface ErrorBody {
  message?: string;
  next?: string | null;
  exitCode?: number;
}

/** An error the daemon reported, rebuilt with its exit code so the CLI renders it as if it were its own. */
function rebuilt(error: ErrorBody): CsLlmError {
  const message = error.message ?? 'the daemon refused the operation';
  const options = error.next ? { next: error.next } : {};
  switch (error.exitCode) {
    case ExitCode.usage:
      return new UsageError(message, options);
    case ExitCode.config:
      return new ConfigError(message, options);
    case ExitCode.conflict:
      return new ConflictError(message, options);
    case ExitCode.notFound:
      return new NotFoundError(message, options);
    default:
      return new EnvironmentError(message, options);
  }
}

/**
 * One request on the socket. No timeout: an operation (a prune of years of sessions, a key rotation) may run
 * long with nothing to send meanwhile; Ctrl-C ends the command, and the daemon stops the operation between
 * two batches when the connection goes.
 */
function call<T>(socketPath: string, route: string, body: object): Promise<T> {
  const text = JSON.stringify(body);
  return new Promise<T>((resolvePromise, reject) => {
    const req = request(
      {
        socketPath,
        path: route,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          let answer: { error?: ErrorBody } & Record<string, unknown>;
          try {
            answer = JSON.parse(Buffer.concat(chunks).toString('utf8')) as typeof answer;
          } catch {
            reject(new EnvironmentError(`the daemon answered ${route} with something that is not JSON (status ${res.statusCode})`));
            return;
          }
          if (res.statusCode === 200 && !answer.error) resolvePromise(answer as T);
          else reject(rebuilt(answer.error ?? {}));
        });
        res.on('error', reject);
      },
    );
    req.on('error', (err) =>
      reject(
        new EnvironmentError(`the running daemon did not answer on its control socket ${socketPath}: ${err.message}`, {
          next: 'See cs-llm daemon status and its log. A daemon of an older cs-llm has no control socket: restart it with this version, or stop it to run this command on the database directly.',
          cause: err,
        }),
      ),
    );
    req.end(text);
  });
}

/** The store operations, done by the daemon that listens on `socketPath`. */
export function remoteAdmin(socketPath: string, extra: { auditKeyFile?: string } = {}): StoreAdmin {
  return {
    deleteSession: (r) => call(socketPath, '/sessions/delete', r),
    deleteTenant: (r) => call(socketPath, '/sessions/delete-tenant', r),
    pruneSessions: (r) => call(socketPath, '/sessions/prune', r),
    pruneAudit: (r) => call(socketPath, '/audit/prune', { ...r, ...(extra.auditKeyFile ? { keyFile: resolve(extra.auditKeyFile) } : {}) }),
    scrub: (r = {}) => call(socketPath, '/store/scrub', r),
    rotateKey: (r) => call(socketPath, '/store/rotate-key', r),
  };
}

/**
 * The pid of the daemon that serves `dbFile` when one runs (its state file says so, and its process is still
 * that daemon), else null: then nothing else writes the database and the CLI opens it itself.
 */
export function runningDaemonFor(paths: Pick<Paths, 'daemonStateFile'>, dbFile: string): number | null {
  const state = readDaemonState(paths);
  if (!state || daemonProcess(state) !== 'running') return null;
  if (state.db !== undefined && resolve(state.db) !== resolve(dbFile)) return null;
  return state.pid;
}
