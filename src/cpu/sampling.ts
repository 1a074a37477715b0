/*
 * The sampling fields of a chat request the CPU engine honours (temperature, top_p, seed), checked as vLLM
 * checks them. Pure.
 */

import type { RequestProblem } from '../openai-server/errors.js';

/** Without a temperature in the request: llama.cpp's server default. */
const DEFAULT_TEMPERATURE = 0.8;

export interface Sampling {
  temperature: number;
  topP?: number;
  seed?: number;
}

export function samplingOf(body: Record<string, unknown>): { ok: true; value: Sampling } | { ok: false; problem: RequestProblem } {
  const bad = (message: string, param: string) => ({ ok: false as const, problem: { status: 400, message, param } });
  const { temperature, top_p: topP, seed } = body;
  if (temperature !== undefined && temperature !== null && (typeof temperature !== 'number' || temperature < 0 || temperature > 2))
    return bad('temperature must be a number from 0 to 2.', 'temperature');
  if (topP !== undefined && topP !== null && (typeof topP !== 'number' || topP <= 0 || topP > 1))
    return bad('top_p must be a number in (0, 1].', 'top_p');
  if (seed !== undefined && seed !== null && (typeof seed !== 'number' || !Number.isInteger(seed)))
    return bad('seed must be an integer.', 'seed');
  return {
    ok: true,
    value: {
      temperature: typeof temperature === 'number' ? temperature : DEFAULT_TEMPERATURE,
      topP: typeof topP === 'number' ? topP : undefined,
      seed: typeof seed === 'number' ? Math.abs(seed) % 2 ** 31 : undefined,
    },
  };
}
