/*
 * One error family for everything cs-llm reports to a person. Each error says what happened (message),
 * what to do next (next), and which exit code a script sees. Anything that is not a CsLlmError is a bug and
 * is rendered as one by the top-level handler in src/cli/run.ts.
 */

export const ExitCode = {
  ok: 0,
  bug: 1,
  usage: 2,
  config: 3,
  environment: 4,
  doesNotFit: 5,
  engine: 6,
  timeout: 7,
  conflict: 8,
  notFound: 9,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

export interface CsLlmErrorOptions {
  next?: string;
  cause?: unknown;
  /** Extra lines shown under the message (e.g. the last log lines of a container). */
  details?: string[];
}

export class CsLlmError extends Error {
  readonly exitCode: ExitCodeValue;
  readonly next: string | undefined;
  readonly details: string[];
  override readonly cause: unknown;

  constructor(message: string, exitCode: ExitCodeValue, options: CsLlmErrorOptions = {}) {
    super(message);
    this.name = new.target.name;
    this.exitCode = exitCode;
    this.next = options.next;
    this.details = options.details ?? [];
    this.cause = options.cause;
  }
}

/** Bad flags or arguments. */
export class UsageError extends CsLlmError {
  constructor(message: string, options?: CsLlmErrorOptions) {
    super(message, ExitCode.usage, options);
  }
}

/** A config file or environment variable that does not validate. */
export class ConfigError extends CsLlmError {
  constructor(message: string, options?: CsLlmErrorOptions) {
    super(message, ExitCode.config, options);
  }
}

/** The host lacks something: Docker, a GPU, the NVIDIA runtime, a free port, disk. */
export class EnvironmentError extends CsLlmError {
  constructor(message: string, options?: CsLlmErrorOptions) {
    super(message, ExitCode.environment, options);
  }
}

/** The model does not fit the GPU(s). */
export class FitError extends CsLlmError {
  constructor(message: string, options?: CsLlmErrorOptions) {
    super(message, ExitCode.doesNotFit, options);
  }
}

/** The engine container or process failed (exited, crashed, unhealthy). */
export class EngineError extends CsLlmError {
  constructor(message: string, options?: CsLlmErrorOptions) {
    super(message, ExitCode.engine, options);
  }
}

/** Something did not happen within its limit. Distinct from a failure on purpose. */
export class TimeoutError extends CsLlmError {
  readonly timeoutMs: number;
  constructor(message: string, timeoutMs: number, options?: CsLlmErrorOptions) {
    super(message, ExitCode.timeout, options);
    this.timeoutMs = timeoutMs;
  }
}

/** A resource is busy or already exists (port taken, session locked). */
export class ConflictError extends CsLlmError {
  constructor(message: string, options?: CsLlmErrorOptions) {
    super(message, ExitCode.conflict, options);
  }
}

export class NotFoundError extends CsLlmError {
  constructor(message: string, options?: CsLlmErrorOptions) {
    super(message, ExitCode.notFound, options);
  }
}

export function isCsLlmError(err: unknown): err is CsLlmError {
  return err instanceof CsLlmError;
}

/** Text of an unknown thrown value, without assuming it is an Error. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * The text a person sees for an error. User errors get message, details and next step, no stack; with
 * verbose, the cause chain and stack follow. Anything else is a bug and says so.
 */
export function renderError(err: unknown, options: { verbose: boolean }): string {
  const lines: string[] = [];
  if (isCsLlmError(err)) {
    lines.push(`error: ${err.message}`);
    for (const d of err.details) lines.push(`  ${d}`);
    if (err.next) lines.push(`next: ${err.next}`);
  } else {
    lines.push(`error: unexpected failure: ${errorMessage(err)}`);
    lines.push('next: this is a bug in cs-llm; rerun with --verbose and report the output.');
  }
  if (options.verbose) {
    let cause: unknown = err;
    let depth = 0;
    while (cause !== undefined && cause !== null && depth < 5) {
      if (cause instanceof Error && cause.stack) lines.push(depth === 0 ? cause.stack : `caused by: ${cause.stack}`);
      else if (depth > 0) lines.push(`caused by: ${String(cause)}`);
      cause = cause instanceof Error ? (cause as { cause?: unknown }).cause : undefined;
      depth++;
    }
  }
  return lines.join('\n');
}

export function exitCodeOf(err: unknown): number {
  return isCsLlmError(err) ? err.exitCode : ExitCode.bug;
}
