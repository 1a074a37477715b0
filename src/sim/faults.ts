/*
 * Which injected fault a request gets. A seeded PRNG makes a run repeatable (same seed, same requests,
 * same faults), and a rate of 1 means every request, so tests can force each fault.
 */

import type { ServerResponse } from 'node:http';
import { errorBody } from '../openai-server/errors.js';
import { sendJson } from '../openai-server/respond.js';

export type FaultKind = 'fail429' | 'fail503' | 'fail500' | 'hang' | 'dieMidStream';

export type FaultRates = Record<FaultKind, number>;

/** Checked in this order; the first that fires wins. */
export const FAULT_ORDER: readonly FaultKind[] = ['fail429', 'fail503', 'fail500', 'hang', 'dieMidStream'];

/** mulberry32: tiny, fast, good enough to spread faults; returns numbers in [0, 1). */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One draw per fault kind per request, always, so which rates are set does not shift later decisions. */
export function createFaultPicker(rates: FaultRates, seed: number): () => FaultKind | undefined {
  const random = seededRandom(seed);
  return () => {
    let picked: FaultKind | undefined;
    for (const kind of FAULT_ORDER) {
      const draw = random();
      if (picked === undefined && draw < rates[kind]) picked = kind;
    }
    return picked;
  };
}

/**
 * Answers a request that drew the 429, 503 or 500 fault, or holds it open for hang (until the client gives up
 * or the simulator closes); false when the reply is to be generated (no fault, or die mid-stream).
 */
export function answerFault(fault: FaultKind | undefined, res: ServerResponse, hanging: Set<ServerResponse>): boolean {
  switch (fault) {
    case 'fail429':
      sendJson(res, 429, errorBody(429, 'Too many requests (simulated): retry after 1 second.'), { 'retry-after': '1' });
      return true;
    case 'fail503':
      sendJson(res, 503, errorBody(503, 'Service unavailable (simulated): retry after 1 second.'), { 'retry-after': '1' });
      return true;
    case 'fail500':
      sendJson(res, 500, errorBody(500, 'Internal server error (simulated).'));
      return true;
    case 'hang':
      hanging.add(res);
      res.once('close', () => hanging.delete(res));
      return true;
    default:
      return false;
  }
}
