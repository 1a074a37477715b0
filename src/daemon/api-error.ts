import type { ServerResponse } from 'node:http';

/**
 * An error answered in OpenAI's shape: {"error": {"message", "type", "param", "code"}}. Handlers throw
 * these; the server turns anything else into a plain 500 without a stack trace.
 */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly code: string | null;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    message: string,
    options: { type?: string; param?: string | null; code?: string | null; headers?: Record<string, string> } = {},
  ) {
    super(message);
    this.status = status;
    this.type = options.type ?? defaultType(status);
    this.param = options.param ?? null;
    this.code = options.code ?? null;
    this.headers = options.headers ?? {};
  }
}

/** The store (PostgreSQL) cannot be reached: 503 store_unavailable, which the client may retry. */
export function storeUnavailable(err: { message: string }): ApiError {
  return new ApiError(503, `${err.message}; retry in a moment`, { code: 'store_unavailable', headers: { 'retry-after': '1' } });
}

function defaultType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 409) return 'conflict_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return status === 502 || status === 504 ? 'upstream_error' : 'server_error';
  return 'invalid_request_error';
}

export function errorBody(err: ApiError): string {
  return JSON.stringify({ error: { message: err.message, type: err.type, param: err.param, code: err.code } });
}

/** The bytes of an SSE error event, for failures after a stream's headers went out. */
export function sseErrorEvent(err: ApiError): string {
  return `data: ${errorBody(err)}\n\n`;
}

export function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  const body = JSON.stringify(value);
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export function sendError(res: ServerResponse, err: ApiError): void {
  if (res.headersSent) {
    // Too late for a status: end what was sent (a stream gets its error event from its handler).
    res.end();
    return;
  }
  const body = errorBody(err);
  res.writeHead(err.status, {
    ...err.headers,
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}
