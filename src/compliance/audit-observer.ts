import type { IncomingMessage } from 'node:http';
import type { RequestObservers, RequestRecord } from '../daemon/observers.js';
import { SESSION_ID_PATTERN } from '../daemon/security.js';
import { createAuditWriter, type AuditEntry, type AuditWriter } from '../store/audit.js';
import type { SqliteDatabase } from '../store/database.js';

/** The session a request concerned: X-Session-Id on a turn, :id on /v1/sessions/:id; only well-formed ids. */
export function requestSessionId(req: IncomingMessage, params: Record<string, string>): string | undefined {
  const header = req.headers['x-session-id'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && SESSION_ID_PATTERN.test(value)) return value;
  const id = params.id;
  return id !== undefined && SESSION_ID_PATTERN.test(id) ? id : undefined;
}

/** What the audit log keeps of a finished request: metadata only, never message contents. */
export function auditEntryOf(record: RequestRecord, at: number, defaultUpstream: string): AuditEntry {
  return {
    at,
    keyId: record.keyId ?? null,
    method: record.method,
    route: record.route,
    sessionId: record.sessionId ?? null,
    // Where the router did not say which upstream served, a request that reached one went to the primary.
    upstream: record.upstream ?? (record.upstreamMs > 0 ? defaultUpstream : null),
    status: record.status,
    outcome: record.outcome,
    errorCode: record.errorCode ?? null,
    promptTokens: record.promptTokens ?? null,
    completionTokens: record.completionTokens ?? null,
    latencyMs: record.totalMs,
    upstreamMs: record.upstreamMs,
  };
}

/**
 * Audits every request through the daemon's observers hook. The listener only queues; the writer stores the
 * queue in one transaction every flushMs. close() writes what is left (call it before the store closes).
 */
export function attachAudit(
  db: SqliteDatabase,
  observers: RequestObservers,
  options: { upstreamUrl: string; flushMs?: number; onError?: (err: unknown) => void },
): AuditWriter {
  const writer = createAuditWriter(db, {
    ...(options.flushMs ? { flushMs: options.flushMs } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
  });
  const detach = observers.add((record) => writer.append(auditEntryOf(record, Date.now(), options.upstreamUrl)));
  return {
    get queued() {
      return writer.queued;
    },
    append: (entry) => writer.append(entry),
    flush: () => writer.flush(),
    close() {
      detach();
      writer.close();
    },
  };
}
