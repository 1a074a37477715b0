// Relaying an upstream body to the client as it comes, with backpressure both ways: the upstream pauses while
// the client's socket is full, that wait is not upstream silence, and a client that stays full too long is cut.
import type { ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import type { StreamMeter } from '../metrics/usage.js';
import type { IdleWatch } from './upstream.js';

export interface PassThroughOptions {
  idle: IdleWatch;
  meter: StreamMeter;
  /** What of a chunk to send (null: nothing); the chunk itself when absent. */
  transform: ((chunk: Buffer) => Buffer | null) | undefined;
  /** How long the client's socket may stay full before onStall() (which cuts the client). */
  stallMs: number;
  onStall: () => void;
}

const DONE = Buffer.from('data: [DONE]\n\n');

/** The chunk ends with the OpenAI stream's last event. */
function endsWithDone(chunk: Buffer): boolean {
  const n = chunk.length;
  return n >= DONE.length && chunk[n - 1] === 10 && chunk[n - 3] === 93 && chunk.compare(DONE, 0, DONE.length, n - DONE.length) === 0;
}

/**
 * Relays a body's chunks (or what `transform` makes of each) to the client as they arrive, from 'data' events:
 * an async iterator costs a promise and microtask hops per chunk, which on a stream of one-token chunks was a
 * large share of the daemon's CPU. The upstream pauses while the client's socket is full; that wait does not
 * count as upstream silence, and one longer than `stallMs` cuts the client. Rejects with the body's error, or
 * when it closes before it ended (an abort can destroy it without one).
 */
export function passThrough(body: Readable, res: ServerResponse, options: PassThroughOptions): Promise<void> {
  const { idle, meter, transform } = options;
  return new Promise((resolve, reject) => {
    let ended = false;
    let corked = false;
    // The stream's last event went out corked: see uncork.
    let last = false;
    // Armed only while the client's socket is full, so a client that reads costs no timer.
    let stall: NodeJS.Timeout | null = null;
    const uncork = () => {
      if (last) {
        // After [DONE] only the body's end can follow, usually read with it: the caller's res.end() then
        // sends the last events and the chunked terminator in one writev (end() uncorks fully) instead of a
        // write of its own, 4% of the daemon's CPU under short streams. If the end is not here by the next
        // turn of the loop, the events go out then.
        last = false;
        setImmediate(uncork);
        return;
      }
      corked = false;
      res.uncork();
    };
    const resume = () => {
      if (stall === null) return;
      clearTimeout(stall);
      stall = null;
      idle.resume();
      body.resume();
    };
    const onData = (chunk: Buffer) => {
      idle.refresh();
      meter.push(chunk);
      let out: Buffer | null = chunk;
      if (transform) {
        try {
          out = transform(chunk);
        } catch (err) {
          body.destroy(err as Error);
          return;
        }
      }
      if (out === null) return;
      if (endsWithDone(out)) last = true;
      // undici emits one 'data' per HTTP chunk, several in a row when one socket read held several: they
      // leave in one writev at the end of this tick rather than a syscall each.
      if (!corked) {
        corked = true;
        res.cork();
        process.nextTick(uncork);
      }
      if (!res.write(out) && stall === null) {
        body.pause();
        idle.pause();
        stall = setTimeout(options.onStall, options.stallMs);
      }
    };
    const settle = (err: Error | null) => {
      if (stall !== null) clearTimeout(stall);
      body.off('data', onData);
      body.off('end', onEnd);
      body.off('error', onError);
      body.off('close', onClose);
      res.off('drain', resume);
      res.off('close', resume);
      if (err) reject(err);
      else resolve();
    };
    const onEnd = () => {
      ended = true;
      settle(null);
    };
    const onError = (err: Error) => settle(err);
    const onClose = () => {
      if (!ended) settle(new Error('the upstream body closed before it ended'));
    };
    res.on('drain', resume);
    // A client that left never drains; the abort that follows destroys the body.
    res.on('close', resume);
    body.on('end', onEnd);
    body.on('error', onError);
    body.on('close', onClose);
    body.on('data', onData);
  });
}
