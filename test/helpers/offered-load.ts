import { Agent, request } from 'undici';

export interface OfferedResult {
  statuses: Map<number, number>;
  /** Requests that failed without an HTTP answer. */
  errors: number;
}

/**
 * Open-loop load: `count` chat completions sent at even intervals over `spanMs`, each when it is due whatever
 * the ones before are doing (as independent customers arrive), then waits for all of them.
 */
export async function offerEvenly(url: string, count: number, spanMs: number, body: Record<string, unknown>): Promise<OfferedResult> {
  const agent = new Agent({ connections: 256, keepAliveTimeout: 10_000 });
  const statuses = new Map<number, number>();
  let errors = 0;
  const started = performance.now();
  const sent: Array<Promise<void>> = [];
  for (let i = 0; i < count; i++) {
    const due = started + (i * spanMs) / count;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sent.push(
      request(`${url}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: agent,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      }).then(
        async (res) => {
          await res.body.dump();
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        },
        () => {
          errors++;
        },
      ),
    );
  }
  await Promise.all(sent);
  await agent.close();
  return { statuses, errors };
}
