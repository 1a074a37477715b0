/*
 * Debug logging by namespace, enabled with DEBUG=cs-llm:* (or a list such as cs-llm:engine,cs-llm:daemon).
 * It writes to stderr so stdout stays parseable, and redacts anything that looks like a secret: services
 * log freely without thinking about which field holds a key.
 */

export type Logger = ((message: string, ...fields: unknown[]) => void) & { enabled: boolean };

const SECRET_PATTERNS: RegExp[] = [
  /(authorization["']?\s*[:=]\s*["']?)(bearer\s+)?[^\s"',}]+/gi,
  /(bearer\s+)[A-Za-z0-9._~+/=-]+/gi,
  /\b(hf_)[A-Za-z0-9]{8,}/g,
  /\b(sk-)[A-Za-z0-9_-]{8,}/g,
  /\b(csk_)[A-Za-z0-9_-]{8,}/g,
  /((?:api[_-]?key|token|password|secret)["']?\s*[:=]\s*["']?)[^\s"',}]+/gi,
];

export function redactSecrets(text: string): string {
  let out = text;
  for (const pattern of SECRET_PATTERNS) {
    out = out.replace(pattern, (_match, prefix: string, maybeBearer?: string) => {
      const keep = typeof maybeBearer === 'string' ? prefix + maybeBearer : prefix;
      return `${keep}[redacted]`;
    });
  }
  return out;
}

function enabledFor(namespace: string, debug: string | undefined): boolean {
  if (!debug) return false;
  return debug.split(/[\s,]+/).some((pattern) => {
    if (pattern === '*') return true;
    if (pattern.endsWith('*')) return namespace.startsWith(pattern.slice(0, -1));
    return pattern === namespace;
  });
}

function format(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value instanceof Error) return value.stack ?? value.message;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

export function createLogger(area: string, env: NodeJS.ProcessEnv = process.env): Logger {
  const namespace = `cs-llm:${area}`;
  const enabled = enabledFor(namespace, env.DEBUG);
  const log = ((message: string, ...fields: unknown[]) => {
    if (!enabled) return;
    const line = [message, ...fields.map(format)].join(' ');
    process.stderr.write(`${new Date().toISOString()} ${namespace} ${redactSecrets(line)}\n`);
  }) as Logger;
  log.enabled = enabled;
  return log;
}
