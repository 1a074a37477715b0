// Who may talk to an engine we ship (the simulator and the CPU engine): the same API key check as vLLM's
// --api-key, and a Host check vLLM does not have. The engine port is loopback-published, but any local
// process, or a browser page through DNS rebinding (a name of the attacker's that resolves to 127.0.0.1),
// can reach it; the key stops the first, the Host check the second.
//
// vLLM's AuthenticationMiddleware (vllm/entrypoints/openai/server_utils.py, vllm-project/vllm) guards
// every path that starts with "/v1", skips OPTIONS, splits `Authorization` at its first space, takes the
// scheme case-insensitively ("bearer"), compares SHA-256 digests of the token and the key with
// secrets.compare_digest, and answers 401 with the body {"error": "Unauthorized"} (not OpenAI's error
// object: clients see it as an AuthenticationError either way). /health, /ping, /version and /metrics stay
// open (vllm #18892: /metrics is not protected). Node built-ins only: the simulator image has no node_modules.
import { createHash, timingSafeEqual } from 'node:crypto';
import { hostname } from 'node:os';
import { errorBody, type ErrorBody } from './errors.js';

export interface AccessOptions {
  /** When set, /v1* needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string | undefined;
  /**
   * Names besides loopback that the Host header may carry, comma-separated: the engine's container name
   * when something reaches it by that name ($CS_LLM_ENGINE_HOSTNAME). The machine's own hostname (in a
   * container: what Docker's `Hostname` set) is always allowed.
   */
  engineHostname?: string | undefined;
}

export interface AccessRefusal {
  status: 401 | 403;
  body: ErrorBody | { error: 'Unauthorized' };
}

export type AccessGuard = (request: {
  method: string;
  path: string;
  host: string | undefined;
  authorization: string | undefined;
}) => AccessRefusal | undefined;

const LOOPBACK_NAMES = ['127.0.0.1', 'localhost', '::1'];

export function createAccessGuard(options: AccessOptions, ownHostname: string = hostname()): AccessGuard {
  const names = new Set([...LOOPBACK_NAMES, ownHostname, ...(options.engineHostname ?? '').split(',')].map(normalName).filter(Boolean));
  const keyDigest = options.apiKey ? sha256(options.apiKey) : undefined;
  return ({ method, path, host, authorization }) => {
    const name = host === undefined ? undefined : hostName(host);
    if (name === undefined || !names.has(name)) {
      return {
        status: 403,
        body: errorBody(
          403,
          `This engine answers only to a loopback Host (127.0.0.1, localhost, [::1]) or its own name, not ${JSON.stringify(host ?? '')}. ` +
            'Reach it through 127.0.0.1 or through the cs-llm daemon.',
        ),
      };
    }
    if (keyDigest && method !== 'OPTIONS' && path.startsWith('/v1') && !bearerMatches(authorization, keyDigest)) {
      return { status: 401, body: { error: 'Unauthorized' } };
    }
    return undefined;
  };
}

/** The host part of a Host header, lowercased, without its port and IPv6 brackets; undefined when malformed. */
export function hostName(header: string): string | undefined {
  const value = header.trim().toLowerCase();
  const match = /^(?:\[([0-9a-f:.]+)\]|([^:[\]\s]+))(?::(\d{1,5}))?$/.exec(value);
  if (!match) return undefined;
  return match[1] ?? match[2];
}

function normalName(name: string): string {
  return name.trim().toLowerCase();
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest();
}

/** `Bearer <token>` (any case of the scheme) whose token is the key; digests of equal length compared in constant time. */
function bearerMatches(authorization: string | undefined, keyDigest: Buffer): boolean {
  if (!authorization) return false;
  const space = authorization.indexOf(' ');
  const scheme = space < 0 ? authorization : authorization.slice(0, space);
  if (scheme.toLowerCase() !== 'bearer') return false;
  return timingSafeEqual(sha256(space < 0 ? '' : authorization.slice(space + 1)), keyDigest);
}
