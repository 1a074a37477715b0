/*
 * The HTTP side of readiness, the same for every engine kind (all speak vLLM's OpenAI-compatible API).
 * Each request has its own timeout so a hung server never hangs `up`.
 */

import type { HealthAnswer } from './readiness.js';

const REQUEST_TIMEOUT_MS = 5000;
/**
 * Short on purpose: right after a container starts, Docker's port proxy can accept a connection and hold
 * it without an answer; a healthy server answers /health in milliseconds.
 */
const HEALTH_TIMEOUT_MS = 2000;

/**
 * fetch with a deadline that keeps the process alive. AbortSignal.timeout's timer is unref'd: when Docker's
 * port proxy accepts a connection and then holds it, Node 20's fetch neither answers nor fails, and with
 * nothing else pending the process would simply exit mid-wait instead of timing out.
 */
async function fetchWithin(url: string, timeoutMs: number, init: RequestInit = {}): Promise<Response> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer from ${url} within ${timeoutMs} ms`)), timeoutMs);
  try {
    const res = await fetch(url, { ...init, signal: controller.signal });
    // The body is read by the caller under the same deadline: keep the timer until then.
    const body = await res.arrayBuffer();
    return new Response(body, { status: res.status, headers: res.headers });
  } finally {
    clearTimeout(timer);
  }
}

/** The engine's key (engine-key.ts) as vLLM expects it; /health and /metrics need none, /v1/* does. */
function authHeaders(apiKey: string | undefined): Record<string, string> {
  return apiKey ? { authorization: `Bearer ${apiKey}` } : {};
}

export async function probeHealth(baseUrl: string, timeoutMs = HEALTH_TIMEOUT_MS): Promise<HealthAnswer> {
  try {
    const res = await fetchWithin(`${baseUrl}/health`, timeoutMs);
    return res.status === 200 ? 'ok' : 'loading';
  } catch {
    return 'down';
  }
}

export async function fetchServedModels(baseUrl: string, apiKey?: string, timeoutMs = REQUEST_TIMEOUT_MS): Promise<string[]> {
  const res = await fetchWithin(`${baseUrl}/v1/models`, timeoutMs, { headers: authHeaders(apiKey) });
  if (res.status !== 200) {
    throw new Error(`/v1/models answered ${res.status}`);
  }
  const body = (await res.json()) as { data?: Array<{ id?: unknown }> };
  return (body.data ?? []).map((m) => String(m.id));
}

/** A one-token chat completion: proves the engine really generates, not just that its HTTP server is up. */
export async function completeOneToken(baseUrl: string, servedName: string, apiKey?: string, timeoutMs = 60_000): Promise<void> {
  const res = await fetchWithin(`${baseUrl}/v1/chat/completions`, timeoutMs, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...authHeaders(apiKey) },
    body: JSON.stringify({ model: servedName, messages: [{ role: 'user', content: 'ping' }], max_tokens: 1, temperature: 0 }),
  });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`one-token completion answered ${res.status}: ${text.slice(0, 200)}`);
  const body = JSON.parse(text) as { choices?: unknown[] };
  if (!Array.isArray(body.choices) || body.choices.length === 0) throw new Error('one-token completion returned no choices');
}
