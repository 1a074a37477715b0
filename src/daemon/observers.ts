/*
 * The hook metrics attach to: one record per finished request, emitted after the response ended. The daemon
 * works without listeners; listeners must be cheap and must not throw (a throwing one is dropped from the call).
 */

export interface RequestRecord {
  route: string;
  method: string;
  status: number;
  stream: boolean;
  /** true when the request was a turn of a session (X-Session-Id). */
  session: boolean;
  /**
   * 'ok', or why not: the client left, the client was cut for not reading (daemon.clientStallTimeoutMs), the
   * upstream failed, the request was refused.
   */
  outcome: 'ok' | 'client_closed' | 'client_stalled' | 'upstream_failed' | 'rejected' | 'store_failed';
  totalMs: number;
  /** From sending the upstream request to its last byte; 0 when none was made. */
  upstreamMs: number;
  /** What the daemon itself added: totalMs - upstreamMs. */
  overheadMs: number;
  /** Streams: from arrival to the first byte relayed to the client (time to first token as clients see it). */
  ttftMs?: number;
  /** From the reply's usage; for a stream without usage, completion tokens are its deltas counted. */
  promptTokens?: number;
  completionTokens?: number;
  /** The code of the error the daemon answered with (e.g. upstream_timeout); unset for its successes and relayed engine errors. */
  errorCode?: string;
  /** For the audit log: the API key's public prefix when a key was verified (never the key). */
  keyId?: string;
  /** The key's tenant (the implicit default one without keys), once the key was checked: quotas and metrics count it. */
  callerTenant?: string;
  /**
   * The tenant whose conversations the request reached, for the audit log: the key's own, or the one an admin
   * key named with ?tenant=. Unset on requests refused before the key was checked.
   */
  tenant?: string;
  /** The session the request concerned, set by its handler once the id is well-formed (X-Session-Id of a turn, :id on /v1/sessions/:id). */
  sessionId?: string;
  /** The upstream that served the request, where the router knows it (its name or URL). */
  upstream?: string;
  /** The request came while the audit queue was full (refused, or a health check): its record is kept only if there is room. */
  auditOptional?: boolean;
}

export type RequestListener = (record: RequestRecord) => void;

export class RequestObservers {
  private listeners: RequestListener[] = [];

  add(listener: RequestListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  get active(): boolean {
    return this.listeners.length > 0;
  }

  emit(record: RequestRecord): void {
    for (const listener of this.listeners) {
      try {
        listener(record);
      } catch {
        // a metrics bug must never break serving
      }
    }
  }
}
