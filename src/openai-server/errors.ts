// vLLM's error bodies: OpenAI's shape ({"error": {message, type, param, code}}), with vLLM's type names and
// the HTTP status as code. Shared by the simulator and the CPU engine; Node built-ins only.

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

/** A request refused before it is served: its status, message and the field at fault. */
export interface RequestProblem {
  status: number;
  message: string;
  param: string | null;
}

export function errorBody(status: number, message: string, param: string | null = null): ErrorBody {
  return { error: { message, type: ERROR_TYPES[status] ?? 'InternalServerError', param, code: status } };
}

const ERROR_TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'AuthenticationError',
  403: 'PermissionDeniedError',
  404: 'NotFoundError',
  405: 'MethodNotAllowedError',
  413: 'BadRequestError',
  429: 'RateLimitError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};
