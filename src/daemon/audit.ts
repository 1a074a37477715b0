/*
 * The daemon's side of the audit log: what a finished request leaves in it, and the observer that queues it.
 * The log itself (chain, key, writer, verify) is src/store/audit*.ts.
 */

import type { AuditKeyring } from '../store/audit-key.js';
import { createAuditWriter, type AuditEntry, type AuditWriter } from '../store/audit.js';
import type { SqliteDatabase } from '../store/database.js';
import type { RequestObservers, RequestRecord } from './observers.js';

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
  ring: AuditKeyring,
  observers: RequestObservers,
  options: { upstreamUrl: string; flushMs?: number; onError?: (err: unknown) => void },
): AuditWriter {
  const writer = createAuditWriter(db, ring, {
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
