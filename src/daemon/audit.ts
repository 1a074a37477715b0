/*
 * The daemon's side of the audit log: what a finished request leaves in it, the observer that queues it, and
 * the gate that refuses requests while the queue is full (fail closed: nothing is served unaudited). The log
 * itself (chain, key, writer, verify) is src/store/audit*.ts.
 */

import { Counter, Gauge, type Registry } from '../metrics/prom-client.js';
import type { AuditKeyring } from '../store/audit-key.js';
import type { AuditEntry } from '../store/audit.js';
import type { AuditLog } from '../store/store.js';
import { ApiError } from './api-error.js';
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
    tenant: record.tenant ?? null,
  };
}

/** Health checks and metrics answer while the queue is full (their records are kept if there is room). */
const PROBES = new Set(['/healthz', '/readyz', '/metrics']);

export interface DaemonAudit {
  /** False while the write queue is full: API requests are refused (503 audit_unavailable), /readyz is not ready. */
  readonly available: boolean;
  /** Records waiting to be written, and the bound. */
  readonly queued: number;
  readonly maxQueue: number;
  /**
   * Call when a request arrives, before anything else: throws the 503 while the queue is full, and marks the
   * record of a request let through then (a probe) as one to drop if there is no room.
   */
  admit(pathname: string, record: { auditOptional?: boolean }): void;
  /** /metrics: queue length and dropped records. */
  register(registry: Registry): void;
  /** Writes what is left and stops (call before the store closes). */
  close(): void;
}

/**
 * Audits every request through the daemon's observers hook. The listener only queues; the writer stores the
 * queue in transactions every flushMs. Records of requests being served when the queue filled are still
 * queued (so the queue may pass maxQueue by the requests then in flight); those of requests that came while
 * it was full are dropped and counted.
 */
export function attachAudit(
  audit: Pick<AuditLog, 'writer'>,
  ring: AuditKeyring,
  observers: RequestObservers,
  options: { upstreamUrl: string; flushMs: number; maxQueue: number; log: (message: string, detail?: string) => void },
): DaemonAudit {
  let dropped = 0;
  let droppedWhileFull = 0;
  let lastError = '';
  const writer = audit.writer(ring, {
    flushMs: options.flushMs,
    maxQueue: options.maxQueue,
    onError: (err) => {
      // Once per distinct failure, not once per retry.
      const message = (err as Error).message;
      if (message !== lastError) options.log('audit write failed', message);
      lastError = message;
    },
    onFull: (queued) => {
      droppedWhileFull = 0;
      options.log(
        `audit queue full (${queued} records not written, store.auditMaxQueue ${options.maxQueue}): refusing API requests with 503 audit_unavailable until it drains`,
      );
    },
    onDrained: () => {
      lastError = '';
      options.log(`audit queue drained: serving again (${droppedWhileFull} records of requests refused meanwhile were not kept)`);
    },
  });
  const detach = observers.add((record) => {
    if (!writer.append(auditEntryOf(record, Date.now(), options.upstreamUrl), record.auditOptional === true)) {
      dropped++;
      droppedWhileFull++;
    }
  });
  return {
    get available() {
      return !writer.full;
    },
    get queued() {
      return writer.queued;
    },
    maxQueue: options.maxQueue,
    admit(pathname, record) {
      if (!writer.full) return;
      record.auditOptional = true;
      if (PROBES.has(pathname)) return;
      throw new ApiError(
        503,
        `the audit log cannot be written (${writer.queued} records waiting, limit ${options.maxQueue}): requests are refused until it can; see the daemon log`,
        { code: 'audit_unavailable', headers: { 'retry-after': '1' } },
      );
    },
    register(registry) {
      const registers = [registry];
      new Gauge({
        name: 'cs_llm_audit_queue_records',
        help: 'Audit records waiting to be written; at store.auditMaxQueue API requests are refused (503 audit_unavailable).',
        registers,
        collect() {
          this.set(writer.queued);
        },
      });
      new Counter({
        name: 'cs_llm_audit_records_dropped_total',
        help: 'Audit records not kept: those of requests that came while the audit queue was full (refused, or health checks and metrics).',
        registers,
        collect() {
          this.reset();
          this.inc(dropped);
        },
      });
    },
    close() {
      detach();
      writer.close();
    },
  };
}
