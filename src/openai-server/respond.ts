/*
 * Writing the engines' plain replies: a JSON body with its length, an error body for a refused request, and
 * the empty body vLLM's /health answers with.
 */

import type { ServerResponse } from 'node:http';
import { errorBody, type RequestProblem } from './errors.js';

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

export function sendProblem(res: ServerResponse, problem: RequestProblem, headers: Record<string, string> = {}): void {
  sendJson(res, problem.status, errorBody(problem.status, problem.message, problem.param), headers);
}

/** vLLM's /health: the status alone, no body. */
export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status, { 'content-length': 0 });
  res.end();
}
